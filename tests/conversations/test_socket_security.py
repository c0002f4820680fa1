"""The chat socket's defences: whole-origin check, a session re-checked on every action and closed
when it ends, limits on frames and on replies in flight, and bad input answered without closing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.models import Session
from django.db import connection

from accounts.models import User
from catalogue.models import LanguageModel
from conversations.models import Conversation, Message
from core.clock import ManualClock
from tests.conversations.conftest import Browser, Connect, finished, until
from tests.fake_upstream import FakeUpstream, Reply
from tests.signed_in import session_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

SESSION_ENDED = 4401


async def closed_with(socket: WebsocketCommunicator, seconds: float = 10) -> int:
    """Skips frames until the server closes the socket; its close code."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        output = await socket.receive_output(timeout=max(0.01, deadline - loop.time()))
        if output["type"] == "websocket.close":
            return int(output.get("code", 1000))


async def still_open(socket: WebsocketCommunicator) -> None:
    """The socket answers a ping: it is open and everything sent before was handled."""
    await socket.send_json_to({"type": "ping"})
    await until(socket, lambda f: f["type"] == "pong")


@sync_to_async
def stored(conversation: Conversation) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in conversation.messages.order_by("created_at", "id")]


# --- origins ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:8001",  # another port of the same host: another site
        "https://127.0.0.1",  # another scheme
        "null",  # a sandboxed frame or a file:// page
        None,  # no Origin at all
        "http://evil.example",
        "http://127.0.0.1.evil.example",
        "http://user@127.0.0.1",
    ],
)
async def test_a_socket_from_any_other_origin_is_refused(
    alice: User, conversation: Conversation, connect: Connect, origin: str | None
) -> None:
    await connect(alice, conversation.pk, origin=origin, expect=False)


async def test_a_socket_from_the_sites_own_origin_is_accepted(
    alice: User, conversation: Conversation, connect: Connect
) -> None:
    await connect(alice, conversation.pk, origin="http://127.0.0.1")
    await connect(alice, conversation.pk, origin="http://localhost:8000", host="localhost:8000")
    await connect(alice, conversation.pk, origin="HTTP://LOCALHOST:80", host="localhost")


async def test_a_host_outside_allowed_hosts_is_no_origin_of_ours(
    alice: User, conversation: Conversation, connect: Connect
) -> None:
    await connect(alice, conversation.pk, origin="http://evil.example", host="evil.example", expect=False)


async def test_behind_a_tls_proxy_the_origin_is_https(
    alice: User, conversation: Conversation, connect: Connect, settings: Any
) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = [(b"x-forwarded-proto", b"https")]
    await connect(alice, conversation.pk, origin="https://127.0.0.1", headers=proxied)
    await connect(alice, conversation.pk, origin="http://127.0.0.1", headers=proxied, expect=False)


async def test_an_origin_in_csrf_trusted_origins_is_accepted(
    alice: User, conversation: Conversation, connect: Connect, settings: Any
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.com", "https://*.corp.example"]
    await connect(alice, conversation.pk, origin="https://chat.example.com")
    await connect(alice, conversation.pk, origin="https://team.corp.example")
    await connect(alice, conversation.pk, origin="https://chat.example.com:8443", expect=False)
    await connect(alice, conversation.pk, origin="http://chat.example.com", expect=False)


# --- the session -----------------------------------------------------------------------------------


async def test_logging_out_closes_that_sessions_sockets_at_once(
    alice: User, conversation: Conversation, connect: Connect, browser: Browser
) -> None:
    client = await browser(alice)
    session = client.cookies["sessionid"]
    socket = await connect(alice, conversation.pk, session=session)
    other_login = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")

    assert (await client.post("/accounts/logout/")).status_code == 302

    error, _ = await until(socket, lambda f: f["type"] == "error")
    assert error["code"] == "session_ended"
    assert await closed_with(socket) == SESSION_ENDED
    await still_open(other_login)  # another device's login is not this one


async def test_a_password_change_closes_the_users_other_sessions_sockets(
    alice: User, conversation: Conversation, connect: Connect
) -> None:
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")

    @sync_to_async
    def change_password() -> None:
        user = User.objects.get(pk=alice.pk)
        user.set_password("a whole new passphrase")
        user.save()

    await change_password()
    assert await closed_with(socket) == SESSION_ENDED


async def test_deactivating_the_user_closes_their_sockets(
    alice: User, bob: User, conversation: Conversation, connect: Connect, chat_model: LanguageModel
) -> None:
    socket = await connect(alice, conversation.pk)
    bobs = await connect(bob, (await Conversation.objects.acreate(owner=bob, model=chat_model)).pk)

    @sync_to_async
    def deactivate() -> None:
        user = User.objects.get(pk=alice.pk)
        user.is_active = False
        user.save(update_fields=["is_active"])

    await deactivate()
    assert await closed_with(socket) == SESSION_ENDED
    await still_open(bobs)


def delete_session_quietly(session: str) -> None:
    """Deletes a session's row as SQL typed in a console would: no signal."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_session WHERE session_key = %s", [session])


async def test_a_session_deleted_by_an_admin_closes_its_sockets(
    alice: User, conversation: Conversation, connect: Connect
) -> None:
    session = await sync_to_async(session_key)(alice)
    socket = await connect(alice, conversation.pk, session=session)
    other_login = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await Session.objects.filter(session_key=session).adelete()
    assert await closed_with(socket) == SESSION_ENDED
    await still_open(other_login)


async def test_a_socket_cannot_reopen_with_a_session_that_ended(
    alice: User, conversation: Conversation, connect: Connect, browser: Browser
) -> None:
    client = await browser(alice)
    session = client.cookies["sessionid"]
    socket = await connect(alice, conversation.pk, session=session)
    await client.post("/accounts/logout/")
    assert await closed_with(socket) == SESSION_ENDED
    await connect(alice, conversation.pk, session=session, expect=False)


@pytest.mark.parametrize("how", ["session deleted", "password changed quietly", "deactivated quietly"])
async def test_every_action_rechecks_the_session_and_refuses_once_it_ended(
    alice: User, conversation: Conversation, connect: Connect, fake_upstream: FakeUpstream, how: str
) -> None:
    session = await sync_to_async(session_key)(alice)
    socket = await connect(alice, conversation.pk, session=session)
    await until(socket, lambda f: f["type"] == "messages")
    # Changes that send no signal: only the check on the next action can notice them.
    if how == "session deleted":
        await sync_to_async(delete_session_quietly)(session)
    elif how == "password changed quietly":
        await User.objects.filter(pk=alice.pk).aupdate(password=make_password("changed elsewhere"))
    else:
        await User.objects.filter(pk=alice.pk).aupdate(is_active=False)

    await socket.send_json_to({"type": "send", "content": "Still here?"})
    error, _ = await until(socket, lambda f: f["type"] == "error")
    assert error["code"] == "session_ended"
    assert await closed_with(socket) == SESSION_ENDED
    assert await stored(conversation) == []
    assert fake_upstream.requests == []


async def test_stop_and_sync_recheck_the_session_too(
    alice: User, conversation: Conversation, connect: Connect, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(hang=True))
    session = await sync_to_async(session_key)(alice)
    socket = await connect(alice, conversation.pk, session=session)
    await socket.send_json_to({"type": "send", "content": "Hello"})
    await until(socket, lambda f: f["type"] == "message" and f["message"]["role"] == "assistant")
    await Session.objects.filter(session_key=session).adelete()
    await socket.send_json_to({"type": "stop"})
    assert await closed_with(socket) == SESSION_ENDED
    reply = await Message.objects.aget(conversation=conversation, role="assistant")
    assert reply.status == "streaming", "a signed-out socket stopped nothing"
    owner = await connect(alice, conversation.pk)
    await owner.send_json_to({"type": "stop"})
    await until(owner, finished)


# --- abuse -------------------------------------------------------------------------------------------


async def test_a_socket_sending_too_fast_gets_errors_then_recovers(
    alice: User, conversation: Conversation, connect: Connect, clock: ManualClock, settings: Any
) -> None:
    settings.CHAT_SOCKET_FRAME_BURST = 3
    settings.CHAT_SOCKET_FRAMES_PER_SECOND = 2
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    for _ in range(5):
        await socket.send_json_to({"type": "ping"})
    answers = [(await socket.receive_json_from(timeout=5)) for _ in range(5)]
    assert [a["type"] for a in answers] == ["pong"] * 3 + ["error"] * 2
    assert {a.get("code") for a in answers[3:]} == {"rate_limited"}

    clock.advance(1)  # two frames' worth
    for _ in range(3):
        await socket.send_json_to({"type": "ping"})
    answers = [(await socket.receive_json_from(timeout=5))["type"] for _ in range(3)]
    assert answers == ["pong", "pong", "error"]


async def test_a_user_has_at_most_a_few_replies_being_written_at_once(
    alice: User, chat_model: LanguageModel, connect: Connect, fake_upstream: FakeUpstream, settings: Any
) -> None:
    settings.CHAT_MAX_GENERATIONS = 2
    fake_upstream.queue(Reply(hang=True), Reply(hang=True), Reply(content="Third"))
    conversations = [await Conversation.objects.acreate(owner=alice, model=chat_model) for _ in range(3)]
    sockets = [await connect(alice, c.pk) for c in conversations]
    for socket in sockets[:2]:
        await socket.send_json_to({"type": "send", "content": "Write for a long time"})
        await until(socket, lambda f: f["type"] == "message" and f["message"]["role"] == "assistant")

    await sockets[2].send_json_to({"type": "send", "content": "And one more"})
    error, _ = await until(sockets[2], lambda f: f["type"] == "error")
    assert error["code"] == "refused" and "at most 2" in error["message"]
    assert await stored(conversations[2]) == [], "the refused message is not stored"

    await sockets[0].send_json_to({"type": "stop"})
    await until(sockets[0], finished)
    await sockets[2].send_json_to({"type": "send", "content": "And one more"})
    done, _ = await until(sockets[2], finished)
    assert done["message"]["content"] == "Third"
    await sockets[1].send_json_to({"type": "stop"})
    await until(sockets[1], finished)


# --- bad input ---------------------------------------------------------------------------------------

BAD_FRAMES = {
    "invalid JSON": "{",
    "an id too large for any number": '{"type": "edit", "id": 1e400, "content": "x"}',
    "a NaN": '{"type": "edit", "id": NaN, "content": "x"}',
    "a NUL in the content": json.dumps({"type": "send", "content": "a\x00b"}),
    "a lone surrogate in the content": '{"type": "send", "content": "a\\ud800b"}',
    "a lone surrogate in the frame itself": '{"type": "send", "content": "a\ud800b"}',
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "nesting within limits but not a frame": json.dumps({"type": "send", "content": [[[["x"]]]]}),
    "a list": "[1, 2]",
    "a string": '"send"',
    "no type": "{}",
    "an unknown type": '{"type": "delete_everything"}',
    "a huge unknown type": json.dumps({"type": "x" * 100_000}),
    "content not text": '{"type": "send", "content": 5}',
    "an id that is true": '{"type": "edit", "id": true, "content": "x"}',
    "a negative id": '{"type": "edit", "id": -1, "content": "x"}',
    "an id as text": '{"type": "edit", "id": "1", "content": "x"}',
    "an empty message": '{"type": "send", "content": "   "}',
}


@pytest.mark.parametrize("frame", list(BAD_FRAMES.values()), ids=list(BAD_FRAMES))
async def test_bad_input_gets_an_error_frame_and_the_socket_stays_open(
    alice: User,
    conversation: Conversation,
    connect: Connect,
    fake_upstream: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
    frame: str,
) -> None:
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await socket.send_to(text_data=frame)
    error, frames = await until(socket, lambda f: f["type"] == "error")
    assert error["code"] in ("invalid", "refused") and error["message"]
    assert [f["type"] for f in frames] == ["error"]
    await still_open(socket)
    assert await stored(conversation) == []
    assert fake_upstream.requests == []
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_a_frame_too_large_or_binary_is_refused(
    alice: User, conversation: Conversation, connect: Connect, settings: Any
) -> None:
    settings.CHAT_SOCKET_MAX_FRAME_BYTES = 2048
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await socket.send_json_to({"type": "send", "content": "x" * 3000})
    error, _ = await until(socket, lambda f: f["type"] == "error")
    assert "too large" in error["message"]
    await socket.send_to(bytes_data=b'{"type": "ping"}')
    error, _ = await until(socket, lambda f: f["type"] == "error")
    assert "JSON text" in error["message"]
    await still_open(socket)
