"""The chat socket against the fake upstream: streaming, stop, errors, reconnecting, who may connect."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts.models import User
from catalogue.models import Deployment, LanguageModel, Provider
from conversations import branches
from conversations.models import Conversation, Message
from tests.conversations.conftest import Browser, Connect, finished, merge, until
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import free_port
from usage.ledger import flush_usage
from usage.models import UsageRecord

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

WORDS = " ".join(f"word{i}" for i in range(40))


@sync_to_async
def messages(conversation: Conversation) -> list[Message]:
    return list(conversation.messages.order_by("created_at", "id"))


@sync_to_async
def reload(message_id: int) -> Message:
    return Message.objects.get(pk=message_id)


async def test_a_reply_streams_in_batched_frames_and_is_saved_and_charged(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    fake_upstream.queue(Reply(content=WORDS, chunks=40, delay=0.01))
    socket = await connect(alice, conversation.pk)
    first, _ = await until(socket, lambda f: f["type"] == "messages")
    assert first["messages"] == []
    await socket.send_json_to({"type": "send", "content": "Count for me"})
    done, frames = await until(socket, finished)

    stored_user = next(f for f in frames if f["type"] == "message" and f["message"]["role"] == "user")
    assert stored_user["message"]["content"] == "Count for me"
    deltas = [f for f in frames if f["type"] == "delta"]
    text = ""
    for frame in deltas:
        text = merge(text, frame)
    assert text == WORDS
    assert 0 < len(deltas) < 40, "tokens are batched into frames, not one frame per token"
    assert done["message"]["status"] == "complete"
    assert done["message"]["content"] == WORDS

    rows = await messages(conversation)
    assert [(m.role, m.status) for m in rows] == [("user", "complete"), ("assistant", "complete")]
    assert rows[1].content == WORDS
    assert rows[1].completion_tokens and rows[1].prompt_tokens
    sent = fake_upstream.last.body
    assert sent is not None
    assert sent["model"] == "fake-small"
    assert sent["messages"] == [{"role": "user", "content": "Count for me"}]
    await flush_usage()
    usage = await sync_to_async(lambda: list(UsageRecord.objects.filter(user=alice)))()
    assert len(usage) == 1
    assert usage[0].source == UsageRecord.Source.CHAT
    assert usage[0].api_key_id is None


async def test_a_reply_streams_while_djangos_sync_thread_is_busy(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    # Sockets and replies never wait for Django's one thread for synchronous code (where channels
    # would run a database clean-up before every frame): a slow view there must not stall the chat.
    fake_upstream.queue(Reply(content=WORDS, chunks=40, delay=0.01))
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    release = threading.Event()
    busy = asyncio.ensure_future(sync_to_async(release.wait, thread_sensitive=True)(60))
    try:
        await socket.send_json_to({"type": "send", "content": "Count for me"})
        done, frames = await until(socket, finished)
        assert not busy.done(), "the sync thread was held throughout"
    finally:
        release.set()
        await busy
    assert done["message"]["status"] == "complete"
    assert done["message"]["content"] == WORDS
    assert any(f["type"] == "delta" for f in frames)


async def test_the_users_message_is_stored_before_anything_goes_upstream(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    fake_upstream.queue(Reply(hang=True))
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "Keep me safe"})
    assert await sync_to_async(fake_upstream.wait_for_requests, thread_sensitive=False)(1)
    rows = await messages(conversation)
    assert rows[0].role == "user" and rows[0].content == "Keep me safe"
    assert rows[1].status == "streaming"
    await socket.send_json_to({"type": "stop"})
    done, _ = await until(socket, finished)
    assert done["message"]["status"] == "interrupted"


async def test_the_conversation_gets_a_title_from_the_first_message(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "## How do I *parse* JSON in Python?\nThanks"})
    frame, _ = await until(socket, lambda f: f["type"] == "conversation")
    assert frame["conversation"]["title"] == "How do I parse JSON in Python?"
    await until(socket, finished)


async def test_stop_cancels_the_upstream_and_keeps_the_partial_text_as_interrupted(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    fake_upstream.queue(Reply(content=WORDS, chunks=40, hold_after_chunks=5))  # held until stopped
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "Talk"})
    await until(socket, lambda f: f["type"] == "delta")
    await socket.send_json_to({"type": "stop"})
    done, _ = await until(socket, finished)
    assert done["message"]["status"] == "interrupted"
    partial = done["message"]["content"]
    assert partial and WORDS.startswith(partial) and partial != WORDS
    cancelled = await sync_to_async(fake_upstream.last.disconnected.wait, thread_sensitive=False)(5)
    assert cancelled, "the upstream request was closed"
    assert done["message"]["error"] == "", "a stop is no error"
    stored = await reload(done["message"]["id"])
    assert (stored.status, stored.content, stored.error) == ("interrupted", partial, "")


async def test_stop_from_another_socket_of_the_same_conversation_works(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    fake_upstream.queue(Reply(content=WORDS, chunks=40, hold_after_chunks=5))  # held until stopped
    first = await connect(alice, conversation.pk)
    second = await connect(alice, conversation.pk)
    await first.send_json_to({"type": "send", "content": "Talk"})
    await until(second, lambda f: f["type"] == "delta")
    await second.send_json_to({"type": "stop"})
    done, _ = await until(first, finished)
    assert done["message"]["status"] == "interrupted"


async def test_an_upstream_error_appears_on_the_reply_with_its_reason(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    fake_upstream.queue(Reply(status=400, error_message="This model's context is exhausted"))
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "Hello"})
    done, _ = await until(socket, finished)
    assert done["message"]["status"] == "error"
    assert "context is exhausted" in done["message"]["error"]
    rows = await messages(conversation)
    assert rows[0].content == "Hello", "the user's message is kept"


async def test_an_error_after_the_first_token_keeps_the_partial_text(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    fake_upstream.queue(Reply(content="alpha beta gamma", chunks=3, fail_after_chunks=2, error_message="boom"))
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "Hello"})
    done, _ = await until(socket, finished)
    assert done["message"]["status"] == "error"
    assert done["message"]["content"].startswith("alpha")
    assert done["message"]["error"]


@pytest.mark.usefixtures("one_attempt")
async def test_retry_after_an_error_shows_a_new_reply_and_keeps_the_failed_one_as_a_version(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    fake_upstream.queue(Reply(status=503, error_message="overloaded"), Reply(content="Fine now"))
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "Hello"})
    failed, _ = await until(socket, finished)
    await socket.send_json_to({"type": "regenerate"})
    removed, _ = await until(socket, lambda f: f["type"] == "removed")
    assert removed["ids"] == [failed["message"]["id"]]
    done, _ = await until(socket, finished)
    assert (done["message"]["status"], done["message"]["content"]) == ("complete", "Fine now")
    assert done["message"]["siblings"] == [failed["message"]["id"], done["message"]["id"]]
    assert [m.role for m in await messages(conversation)] == ["user", "assistant", "assistant"]
    shown = await sync_to_async(branches.active_path)(conversation.pk)
    assert [m.content for m in shown] == ["Hello", "Fine now"]


async def test_reconnecting_mid_reply_shows_the_text_so_far_then_continues(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    upstream_reply = Reply(content=WORDS, chunks=40, hold_after_chunks=10)
    fake_upstream.queue(upstream_reply)
    first = await connect(alice, conversation.pk)
    await first.send_json_to({"type": "send", "content": "Talk"})
    await until(first, lambda f: f["type"] == "delta")
    await first.disconnect()

    second = await connect(alice, conversation.pk)
    state, _ = await until(second, lambda f: f["type"] == "messages")
    reply = state["messages"][-1]
    assert reply["role"] == "assistant" and reply["status"] == "streaming"
    text = reply["content"]
    upstream_reply.released.set()
    done, frames = await until(second, finished)
    for frame in frames:
        if frame["type"] == "snapshot":
            assert frame["content"].startswith(text)
            text = frame["content"]
        elif frame["type"] == "delta":
            text = merge(text, frame)
    assert text == WORDS == done["message"]["content"]


async def test_closing_every_socket_lets_the_reply_finish_and_be_saved(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    fake_upstream.queue(Reply(content=WORDS, chunks=40, delay=0.01))
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "Talk"})
    reply, _ = await until(socket, lambda f: f["type"] == "message" and f["message"]["role"] == "assistant")
    await socket.disconnect()
    for _ in range(1200):  # a condition, not a duration: up to a minute on a slow machine
        stored = await reload(reply["message"]["id"])
        if stored.status != "streaming":
            break
        await asyncio.sleep(0.05)
    assert (stored.status, stored.content) == ("complete", WORDS)


async def test_a_reply_left_streaming_by_a_dead_worker_shows_as_interrupted(
    alice: User, conversation: Conversation, connect: Connect
) -> None:
    @sync_to_async
    def orphan() -> Message:
        branches.append(conversation, role="user", content="Hi")
        old = timezone.now() - timedelta(minutes=5)
        return branches.append(conversation, role="assistant", content="Half a rep", status="streaming", updated_at=old)

    message = await orphan()
    socket = await connect(alice, conversation.pk)
    state, _ = await until(socket, lambda f: f["type"] == "messages")
    shown = state["messages"][-1]
    assert (shown["status"], shown["content"]) == ("interrupted", "Half a rep")
    assert (await reload(message.pk)).status == "interrupted"


async def test_sending_while_a_reply_streams_is_refused_and_nothing_is_lost(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    fake_upstream.queue(Reply(hang=True))
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "First"})
    await until(socket, lambda f: f["type"] == "message" and f["message"]["role"] == "assistant")
    await socket.send_json_to({"type": "send", "content": "Second"})
    error, _ = await until(socket, lambda f: f["type"] == "error")
    assert "still being written" in error["message"]
    await socket.send_json_to({"type": "stop"})
    await until(socket, finished)


async def test_editing_an_earlier_message_answers_again_on_a_new_branch_keeping_the_old_one(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    fake_upstream.queue(Reply(content="Answer one"), Reply(content="Answer two"), Reply(content="Answer three"))
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "Question one"})
    await until(socket, finished)
    await socket.send_json_to({"type": "send", "content": "Question two"})
    await until(socket, finished)
    first_question = (await messages(conversation))[0]
    await socket.send_json_to({"type": "edit", "id": first_question.pk, "content": "Question one, better"})
    done, _ = await until(socket, finished)
    assert done["message"]["content"] == "Answer three"
    shown = await sync_to_async(branches.active_path)(conversation.pk)
    assert [(m.role, m.content) for m in shown] == [("user", "Question one, better"), ("assistant", "Answer three")]
    assert shown[0].sibling_ids == [first_question.pk, shown[0].pk]  # type: ignore[attr-defined]
    rows = await messages(conversation)
    assert len(rows) == 6, "nothing written or received is lost"
    assert fake_upstream.last.body is not None
    assert fake_upstream.last.body["messages"] == [{"role": "user", "content": "Question one, better"}]


async def test_the_system_prompt_is_sent_first(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    conversation.system_prompt = "Answer like a pirate."
    await sync_to_async(conversation.save)()
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "Hello"})
    await until(socket, finished)
    assert fake_upstream.last.body is not None
    assert fake_upstream.last.body["messages"][0] == {"role": "system", "content": "Answer like a pirate."}


async def test_a_socket_for_another_users_conversation_is_refused(
    bob: User, conversation: Conversation, connect: Connect
) -> None:
    await connect(bob, conversation.pk, expect=False)


async def test_an_anonymous_socket_is_refused(conversation: Conversation, connect: Connect) -> None:
    await connect(None, conversation.pk, expect=False)


async def test_deleting_a_conversation_mid_reply_stops_the_upstream_and_tells_the_sockets(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect, browser: Browser
) -> None:
    fake_upstream.queue(Reply(hang=True))
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "Hello"})
    await until(socket, lambda f: f["type"] == "message" and f["message"]["role"] == "assistant")
    assert await sync_to_async(fake_upstream.wait_for_requests, thread_sensitive=False)(1)

    answer = await (await browser(alice)).delete(f"/api/conversations/{conversation.pk}/")
    assert answer.status_code == 204
    await until(socket, lambda f: f["type"] == "deleted")
    assert (await socket.receive_output(timeout=5))["code"] == 4410
    cancelled = await sync_to_async(fake_upstream.last.disconnected.wait, thread_sensitive=False)(5)
    assert cancelled
    assert not await sync_to_async(Message.objects.filter(conversation_id=conversation.pk).exists)()


def _first_deployment_down(model: LanguageModel, backup_url: str) -> None:
    provider = model.provider
    provider.base_url = f"http://127.0.0.1:{free_port()}/v1"
    provider.save()
    second = Provider.objects.create(name="backup", base_url=backup_url, read_timeout=10)
    Deployment.objects.create(model=model, provider=second, upstream_model="backup-small", priority=1)


async def test_a_reply_whose_first_deployment_is_down_streams_from_the_second(
    alice: User, conversation: Conversation, chat_model: LanguageModel, backup: FakeUpstream, connect: Connect
) -> None:
    await sync_to_async(_first_deployment_down)(chat_model, backup.base_url)
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await socket.send_json_to({"type": "send", "content": "Anyone there?"})
    done, _frames = await until(socket, finished)
    assert done["message"]["status"] == "complete"
    assert done["message"]["content"] == "from the backup"
    assert backup.last.body is not None and backup.last.body["model"] == "backup-small"


async def test_when_every_deployment_is_down_the_reply_says_so(
    alice: User, conversation: Conversation, chat_model: LanguageModel, connect: Connect
) -> None:
    def down() -> None:
        provider = chat_model.provider
        provider.base_url = f"http://127.0.0.1:{free_port()}/v1"
        provider.save()

    await sync_to_async(down)()
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await socket.send_json_to({"type": "send", "content": "Anyone there?"})
    done, _frames = await until(socket, finished)
    assert done["message"]["status"] == "error"
    assert "is unavailable right now; try again in 5 s" in done["message"]["error"]
