"""A chat socket ends with its login on every worker: logging out, a password change or deactivation
on one worker closes that user's sockets on the other too (the per-user group, through Redis)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from django.conf import settings
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from conversations.models import Conversation
from tests.fake_upstream import FakeUpstream
from tests.live_server import LiveServer
from tests.scaleout.conftest import Cluster
from tests.signed_in import session_key

pytestmark = pytest.mark.timeout(120)

SESSION_ENDED = 4401


@pytest.fixture
def conversation(alice: User, fake_upstream: FakeUpstream, transactional_db: None) -> Conversation:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url)
    model = LanguageModel.objects.create(public_id="acme/chat", provider=provider, upstream_model="fake")
    return Conversation.objects.create(owner=alice, model=model)


Open = Callable[[LiveServer, Conversation, str], ClientConnection]


@pytest.fixture
def open_socket() -> Iterator[Open]:
    """Opens a chat socket on a worker with a login's session; all are closed after the test."""
    with ExitStack() as sockets:

        def _open(server: LiveServer, conversation: Conversation, session: str) -> ClientConnection:
            socket = sockets.enter_context(
                connect(
                    f"{server.ws_url}/ws/conversations/{conversation.pk}/",
                    additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}", "Origin": server.url},
                    open_timeout=10,
                )
            )
            assert json.loads(socket.recv(timeout=10))["type"] == "messages"
            return socket

        yield _open


def _close_code(socket: ClientConnection, timeout: float = 10) -> int:
    """Reads until the server closes the socket; its close code (fails if it stays open)."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            socket.recv(timeout=max(0.1, deadline - time.monotonic()))
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return closed.rcvd.code


def _still_open(socket: ClientConnection) -> bool:
    socket.send(json.dumps({"type": "ping"}))
    deadline = time.monotonic() + 10
    while True:
        if json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))["type"] == "pong":
            return True


def _browser(server: LiveServer, session: str) -> httpx.Client:
    """A browser of `server` with that login, and a CSRF token for its forms."""
    token = "t" * 32
    client = httpx.Client(base_url=server.url, timeout=30)
    client.cookies.set(settings.SESSION_COOKIE_NAME, session)
    client.cookies.set(settings.CSRF_COOKIE_NAME, token)
    client.headers["X-CSRFToken"] = token
    return client


def test_logging_out_on_one_worker_closes_that_logins_sockets_on_both(
    shared: Cluster, alice: User, conversation: Conversation, open_socket: Open
) -> None:
    session, other_session = session_key(alice), session_key(alice)
    on_a, on_b = open_socket(shared.a, conversation, session), open_socket(shared.b, conversation, session)
    other_login = open_socket(shared.b, conversation, other_session)

    assert _browser(shared.a, session).post("/accounts/logout/").status_code == 302

    assert _close_code(on_a) == SESSION_ENDED
    assert _close_code(on_b) == SESSION_ENDED
    assert _still_open(other_login)


def test_deactivating_a_user_on_one_worker_closes_their_sockets_on_the_other(
    shared: Cluster, alice: User, admin: User, conversation: Conversation, open_socket: Open
) -> None:
    on_a = open_socket(shared.a, conversation, session_key(alice))
    admin_browser = _browser(shared.b, session_key(admin))
    answer = admin_browser.post(
        "/admin/accounts/user/",
        data={"action": "deactivate", "_selected_action": [str(alice.pk)], "csrfmiddlewaretoken": "t" * 32},
    )
    assert answer.status_code == 302
    assert not User.objects.get(pk=alice.pk).is_active
    assert _close_code(on_a) == SESSION_ENDED


def test_a_password_change_on_one_worker_closes_the_users_sockets_on_the_other(
    shared: Cluster, alice: User, admin: User, conversation: Conversation, open_socket: Open
) -> None:
    on_b = open_socket(shared.b, conversation, session_key(alice))
    admin_browser = _browser(shared.a, session_key(admin))
    new_password: dict[str, Any] = {
        "password1": "an entirely new passphrase",
        "password2": "an entirely new passphrase",
        "usable_password": "true",
        "csrfmiddlewaretoken": "t" * 32,
    }
    answer = admin_browser.post(f"/admin/accounts/user/{alice.pk}/password/", data=new_password)
    assert answer.status_code == 302, answer.text[:2000]
    assert _close_code(on_b) == SESSION_ENDED
