"""A server restart mid-reply: the partial text stays stored and shows as interrupted.

Real server processes: one is stopped (gracefully, then killed outright) while it writes a reply,
a new one is started on the same database, and a socket to it is asked what the reply became.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from websockets.sync.client import ClientConnection, connect

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from conversations.models import Conversation, Message
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer, start_server

pytestmark = pytest.mark.timeout(120)
WORDS = " ".join(f"word{i}" for i in range(40))


@pytest.fixture
def servers(transactional_db: None) -> Iterator[list[LiveServer]]:
    """Servers started by the test, all stopped at its end."""
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.stop()


def _start(servers: list[LiveServer]) -> LiveServer:
    from django.db import connection

    server = start_server(dict(connection.settings_dict), settings.SECRET_KEY)
    servers.append(server)
    return server


@pytest.fixture
def conversation(alice: User, fake_upstream: FakeUpstream) -> Conversation:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=30)
    model = LanguageModel.objects.create(public_id="acme/slow", provider=provider, upstream_model="fake")
    return Conversation.objects.create(owner=alice, model=model)


def _socket(server: LiveServer, conversation: Conversation) -> ClientConnection:
    client = Client()
    client.force_login(conversation.owner)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return connect(
        f"{server.ws_url}/ws/conversations/{conversation.pk}/",
        additional_headers={"Cookie": cookie, "Origin": server.url},
        open_timeout=10,
    )


def _until(socket: ClientConnection, kind: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame["type"] == kind:
            return frame


def _start_a_reply_and_let_some_of_it_be_saved(server: LiveServer, conversation: Conversation) -> None:
    with _socket(server, conversation) as socket:
        _until(socket, "messages")
        socket.send(json.dumps({"type": "send", "content": "Count slowly"}))
        _until(socket, "delta")
    # The socket is gone; the reply goes on. Wait until part of it is in the database.
    deadline = time.monotonic() + 15
    while not Message.objects.filter(conversation=conversation, role="assistant").exclude(content="").exists():
        assert time.monotonic() < deadline, "no partial text was saved"
        time.sleep(0.1)


def _reply_as_shown_by(server: LiveServer, conversation: Conversation) -> dict[str, Any]:
    with _socket(server, conversation) as socket:
        messages = _until(socket, "messages")["messages"]
    return next(m for m in messages if m["role"] == "assistant")


def test_a_graceful_restart_mid_reply_keeps_the_partial_text_as_interrupted(
    servers: list[LiveServer], conversation: Conversation, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content=WORDS, chunks=40, hold_after_chunks=10))  # still writing when stopped
    first = _start(servers)
    _start_a_reply_and_let_some_of_it_be_saved(first, conversation)

    first.stop()  # SIGTERM, as systemd or a deploy does
    assert fake_upstream.last.disconnected.wait(5), "the upstream request outlived the server"
    second = _start(servers)
    reply = _reply_as_shown_by(second, conversation)

    assert reply["status"] == "interrupted"
    assert reply["content"] and WORDS.startswith(reply["content"]) and reply["content"] != WORDS
    assert Conversation.objects.get(pk=conversation.pk).messages.get(role="user").content == "Count slowly"


def test_a_killed_server_mid_reply_leaves_the_partial_text_shown_as_interrupted(
    servers: list[LiveServer], conversation: Conversation, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content=WORDS, chunks=40, hold_after_chunks=10))  # still writing when stopped
    first = _start(servers)
    _start_a_reply_and_let_some_of_it_be_saved(first, conversation)
    saved = Message.objects.get(conversation=conversation, role="assistant").content

    first.process.send_signal(signal.SIGKILL)  # no chance to say anything
    first.process.wait(10)
    second = _start(servers)
    # With nobody left to say so, the reply counts as interrupted once its heartbeat is stale.
    deadline = time.monotonic() + 30
    while (reply := _reply_as_shown_by(second, conversation))["status"] == "streaming":
        assert time.monotonic() < deadline, "the dead reply never showed as interrupted"
        time.sleep(1)

    assert reply["status"] == "interrupted"
    assert reply["content"].startswith(saved) and WORDS.startswith(reply["content"])
