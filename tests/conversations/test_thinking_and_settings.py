"""A reasoning model's thoughts kept apart from its answer; a conversation's sampling settings reaching the upstream."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from catalogue.models import LanguageModel
from conversations import services, tuning
from conversations.models import Conversation, Message
from tests.conversations.conftest import Browser, Connect, finished, merge, until
from tests.fake_upstream import FakeUpstream, Reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_streams_in_its_own_frames_and_is_stored_apart_from_the_answer(
    field: str, alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    fake_upstream.queue(Reply(content="The answer is 4.", reasoning="2 plus 2 makes 4.", reasoning_field=field))
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "2+2?"})
    done, frames = await until(socket, finished)
    thought = ""
    for frame in (f for f in frames if f["type"] == "reasoning"):
        thought = merge(thought, frame)
    assert thought == "2 plus 2 makes 4."
    answer = ""
    for frame in (f for f in frames if f["type"] == "delta"):
        answer = merge(answer, frame)
    assert answer == "The answer is 4."
    assert (done["message"]["content"], done["message"]["reasoning"]) == ("The answer is 4.", "2 plus 2 makes 4.")
    stored = await sync_to_async(Message.objects.get)(pk=done["message"]["id"])
    assert (stored.content, stored.reasoning) == ("The answer is 4.", "2 plus 2 makes 4.")

    # The next request's history carries the answer only, never the thoughts.
    await socket.send_json_to({"type": "send", "content": "And 3+3?"})
    await until(socket, lambda f: finished(f) and f["message"]["id"] != done["message"]["id"])
    sent = fake_upstream.last.body
    assert sent is not None
    assert sent["messages"][1] == {"role": "assistant", "content": "The answer is 4."}
    assert "plus" not in str(sent)


async def test_a_socket_joining_mid_reply_gets_the_thoughts_so_far_in_the_snapshot(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    held = Reply(content="alpha beta gamma", chunks=3, reasoning="Thinking hard.", hold_after_chunks=2)
    fake_upstream.queue(held)
    first = await connect(alice, conversation.pk)
    await first.send_json_to({"type": "send", "content": "Go"})
    await until(first, lambda f: f["type"] == "delta")
    second = await connect(alice, conversation.pk)
    snapshot, _ = await until(second, lambda f: f["type"] == "snapshot")
    assert snapshot["reasoning"] == "Thinking hard."
    held.released.set()
    done, _ = await until(second, finished)
    assert done["message"]["reasoning"] == "Thinking hard."


async def test_settings_reach_the_upstream_capped_by_the_models_output_limit(
    alice: User,
    conversation: Conversation,
    chat_model: LanguageModel,
    fake_upstream: FakeUpstream,
    connect: Connect,
    browser: Browser,
) -> None:
    as_alice = await browser(alice)
    url = f"/api/conversations/{conversation.pk}/"
    answer = await as_alice.patch(
        url, json={"temperature": 0.3, "max_output_tokens": 50_000, "system_prompt": "Be terse."}
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["temperature"], answer.json()["max_output_tokens"]) == (0.3, 50_000)
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "Hi"})
    await until(socket, finished)
    sent = fake_upstream.last.body
    assert sent is not None
    assert sent["temperature"] == 0.3
    assert sent["max_tokens"] == chat_model.max_output_tokens  # 50,000 is more than the model writes
    assert sent["messages"][0] == {"role": "system", "content": "Be terse."}

    cleared = await as_alice.patch(url, json={"temperature": None, "max_output_tokens": 10})
    assert (cleared.json()["temperature"], cleared.json()["max_output_tokens"]) == (None, 10)
    await socket.send_json_to({"type": "send", "content": "Again"})
    await until(socket, finished)
    sent = fake_upstream.last.body
    assert sent is not None and "temperature" not in sent and sent["max_tokens"] == 10


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"max_output_tokens": 1.5}, "max_output_tokens"),
        ({"max_output_tokens": 10**12}, "max_output_tokens"),
    ],
)
async def test_bad_settings_are_refused_with_a_readable_error_and_change_nothing(
    body: dict[str, object], param: str, alice: User, conversation: Conversation, browser: Browser
) -> None:
    as_alice = await browser(alice)
    answer = await as_alice.patch(f"/api/conversations/{conversation.pk}/", json={**body, "title": "Changed"})
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param
    assert answer.json()["error"]["message"]
    stored = await sync_to_async(Conversation.objects.get)(pk=conversation.pk)
    assert (stored.temperature, stored.max_output_tokens, stored.title) == (None, None, "")


async def test_another_user_can_neither_read_nor_change_the_settings(
    bob: User, conversation: Conversation, browser: Browser
) -> None:
    as_bob = await browser(bob)
    url = f"/api/conversations/{conversation.pk}/"
    assert (await as_bob.get(url)).status_code == 404
    assert (await as_bob.patch(url, json={"temperature": 1.5})).status_code == 404
    stored = await sync_to_async(Conversation.objects.get)(pk=conversation.pk)
    assert stored.temperature is None


def test_the_services_refuse_bad_settings_too(alice: User, chat_model: LanguageModel) -> None:
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    for kwargs in ({"temperature": float("nan")}, {"temperature": True}, {"max_output_tokens": -3}):
        with pytest.raises(services.ChatError) as refused:
            services.update_conversation(conversation, **kwargs)  # type: ignore[arg-type]
        assert refused.value.param in kwargs
    assert tuning.upstream_options(conversation, chat_model) == {}


def test_a_new_conversation_can_start_with_settings(alice: User, chat_model: LanguageModel) -> None:
    from conversations import actions

    conversation = actions.do_create(alice, temperature=1.2, max_output_tokens=64)
    assert tuning.upstream_options(conversation, chat_model) == {"temperature": 1.2, "max_tokens": 64}
