"""What goes upstream: history trimmed oldest first to the model's context, system prompt kept."""

from __future__ import annotations

import pytest

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from conversations import branches, services
from conversations.models import Conversation
from usage.tokens import estimate_prompt_tokens, estimate_tokens

pytestmark = pytest.mark.django_db


def turn(role: str, words: int) -> dict[str, str]:
    return {"role": role, "content": " ".join(["word"] * words)}


def test_trimming_drops_the_oldest_turns_and_keeps_the_system_prompt() -> None:
    history = [turn("user", 300), turn("assistant", 300), turn("user", 300), turn("assistant", 300), turn("user", 10)]
    trimmed = services.trim_history("Be kind.", history, context_length=2000, reserve=500)
    assert trimmed[0] == {"role": "system", "content": "Be kind."}
    assert trimmed[-1] == history[-1]
    assert len(trimmed) < len(history) + 1
    assert trimmed[1]["role"] == "user", "a kept history starts with a question"
    assert sum(estimate_tokens(m["content"]) + 4 for m in trimmed) <= 1500


def test_everything_is_kept_when_it_fits() -> None:
    history = [turn("user", 5), turn("assistant", 5), turn("user", 5)]
    assert services.trim_history("", history, context_length=4096, reserve=1024) == history


def test_the_last_message_is_sent_even_when_it_alone_is_too_long() -> None:
    history = [turn("user", 5), turn("assistant", 5), turn("user", 5000)]
    assert services.trim_history("sys", history, context_length=1000, reserve=200)[1:] == [history[-1]]


def test_the_upstream_request_fits_a_small_context(alice: User) -> None:
    provider = Provider.objects.create(name="p", base_url="http://127.0.0.1:9/v1")
    model = LanguageModel.objects.create(
        public_id="tiny", provider=provider, upstream_model="t", context_length=1000, max_output_tokens=200
    )
    conversation = Conversation.objects.create(owner=alice, model=model, system_prompt="Short answers.")
    for i in range(20):
        branches.append(conversation, role="user", content=f"question {i} " + "x " * 100)
        branches.append(conversation, role="assistant", content=f"answer {i} " + "y " * 100)
    _user, reply = services.add_user_message(alice, conversation.pk, "the newest question")
    turn = services.generation_input(reply.pk)
    assert turn is not None
    assert turn.user == alice
    assert turn.public_id == "tiny" and turn.model == model
    messages = turn.messages
    assert turn.prompt_tokens == estimate_prompt_tokens({"messages": messages}), "estimated once, as the gateway would"
    assert messages[0] == {"role": "system", "content": "Short answers."}
    assert messages[-1] == {"role": "user", "content": "the newest question"}
    assert 2 < len(messages) < 41
    assert "question 19" in messages[-3]["content"]
    assert sum(estimate_tokens(m["content"]) for m in messages) < 1000 - 200


def test_titles_come_from_the_first_line_without_markup() -> None:
    assert services.make_title("**Hello** there\nsecond line") == "Hello there"
    long = services.make_title("word " * 40)
    assert len(long) <= services.TITLE_CHARS + 1 and long.endswith("…")
