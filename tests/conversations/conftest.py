"""Fixtures of the browser chat tests: a chat model behind the fake upstream, sockets as a user."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.utils import timezone

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from conversations import branches, generation, sweeper
from conversations.models import Conversation, Message
from conversations.routing import socket_path
from tests.fake_upstream import FakeUpstream
from tests.signed_in import session_key, sign_in
from tests.tools.fixtures import local, mcp_base, search_base, search_engine  # noqa: F401


@pytest.fixture
def chat_model(fake_upstream: FakeUpstream, transactional_db: None) -> LanguageModel:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=10)
    LanguageModel.objects.create(public_id="fake/large", provider=provider, upstream_model="fake-large")
    return LanguageModel.objects.create(
        public_id="fake/small", provider=provider, upstream_model="fake-small", context_length=4096
    )


@pytest.fixture
def conversation(alice: User, chat_model: LanguageModel) -> Conversation:
    return Conversation.objects.create(owner=alice, model=chat_model)


Connect = Callable[..., Awaitable[WebsocketCommunicator]]


def streaming_reply(conversation: Conversation, content: str = "", *, silent_for: timedelta | None = None) -> Message:
    """A question and its reply being written, its heartbeat `silent_for` old (long: its worker died)."""
    branches.append(conversation, role="user", content="Hi")
    beat = timezone.now() - (silent_for or timedelta(0))
    return branches.append(conversation, role="assistant", content=content, status="streaming", updated_at=beat)


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Opens a socket to a conversation as `user` (None: anonymous); all are closed after the test.

    `session`: the session key to use (default: a new login of `user`); `origin=None` sends no Origin;
    `headers`: more handshake headers.
    """
    from chatsite.asgi import application

    opened: list[WebsocketCommunicator] = []

    async def _connect(
        user: User | None,
        conversation_id: int,
        *,
        origin: str | None = "http://127.0.0.1",
        host: str = "127.0.0.1",
        session: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        expect: bool = True,
    ) -> WebsocketCommunicator:
        sent = [(b"host", host.encode()), *(headers or [])]
        if origin is not None:
            sent.append((b"origin", origin.encode()))
        if session is None and user is not None:
            session = await sync_to_async(session_key)(user)
        if session is not None:
            sent.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))
        communicator = WebsocketCommunicator(application, socket_path(conversation_id), headers=sent)
        connected, _code = await communicator.connect(timeout=10)
        assert connected is expect
        if connected:
            opened.append(communicator)
        return communicator

    yield _connect
    for communicator in opened:
        await communicator.disconnect()
    await sweeper.stop()  # started by this loop's first socket; the loop ends with the test
    # A generation outlives sockets; let this test's finish before the next test's loop starts.
    running = list(generation._running.values())
    if running:
        _done, pending = await asyncio.wait(running, timeout=10)
        for task in pending:
            task.cancel()
    layer = get_channel_layer()
    if layer is not None and hasattr(layer, "flush"):
        await layer.flush()


Browser = Callable[[User | None], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """HTTP clients of the app on the test's own event loop (where its sockets and generations run),
    signed in as a user: `client = await browser(alice)`."""
    from chatsite.asgi import application

    clients: list[httpx.AsyncClient] = []

    async def _browser(user: User | None) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://127.0.0.1")  # type: ignore[arg-type]
        clients.append(client)
        return await sync_to_async(sign_in)(client, user)

    yield _browser
    for client in clients:
        await client.aclose()


async def until(
    communicator: WebsocketCommunicator, predicate: Callable[[dict[str, Any]], bool], seconds: float = 10
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Receives frames until one matches; returns it and every frame received on the way (it included)."""
    seen: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"no matching frame within {seconds}s; got {seen}")
        frame = await communicator.receive_json_from(timeout=remaining)
        seen.append(frame)
        if predicate(frame):
            return frame, seen


def finished(frame: dict[str, Any]) -> bool:
    return (
        frame["type"] == "message"
        and frame["message"]["role"] == "assistant"
        and frame["message"]["status"] != "streaming"
    )


def merge(text: str, frame: dict[str, Any]) -> str:
    """What the browser does with a delta frame (offsets are UTF-16 units; the tests use ASCII)."""
    if frame["offset"] + len(frame["text"]) <= len(text):
        return text
    assert frame["offset"] <= len(text), "a frame was missed"
    return text[: frame["offset"]] + frame["text"]


@pytest.fixture(scope="session", autouse=True)
def _close_connection_pool(django_db_setup: None, django_db_blocker: Any) -> Any:
    """Connections that worker threads returned to the pool would keep the test database from being dropped."""
    yield
    from django.db import connections

    for connection in connections.all():
        close_pool = getattr(connection, "close_pool", None)
        if close_pool is not None:
            close_pool()


@pytest.fixture
def media(tmp_path: Any) -> Iterator[Any]:
    """Attachments stored under a temporary folder for the test (returned), not the checkout's var/media."""
    from django.core.files.storage import FileSystemStorage

    from conversations.models import Attachment

    field = Attachment._meta.get_field("file")
    previous = field.storage  # type: ignore[attr-defined]
    field.storage = FileSystemStorage(location=tmp_path, base_url=None)  # type: ignore[attr-defined]
    yield tmp_path
    field.storage = previous  # type: ignore[attr-defined]


@pytest.fixture
def knowledge_media(tmp_path: Any) -> Iterator[Any]:
    """Knowledge files stored under a temporary folder for the test (returned)."""
    from django.core.files.storage import FileSystemStorage

    from knowledge.models import StoredFile

    field = StoredFile._meta.get_field("content")
    previous = field.storage  # type: ignore[attr-defined]
    folder = tmp_path / "knowledge"
    field.storage = FileSystemStorage(location=folder, base_url=None)  # type: ignore[attr-defined]
    yield folder
    field.storage = previous  # type: ignore[attr-defined]


@pytest.fixture
def ingest_at_once() -> Iterator[None]:
    """Each queued file ingested as its transaction commits, in place of the worker (tested as a real process
    in tests/knowledge/test_worker.py)."""
    from knowledge import services, tasks

    services.register_enqueue(services.ingest)
    yield
    services.register_enqueue(tasks.enqueue)
