"""POST /v1/chat/completions through the official openai SDK, sync and async, streamed and not."""

from __future__ import annotations

from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway.conftest import MODEL, UPSTREAM_MODEL, Gateway
from tests.openai_schema import validate

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]


def test_it_answers_a_completion_with_our_model_id(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="Hello there"))
    completion = gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == "Hello there"
    assert completion.model == MODEL
    validate(completion.model_dump(exclude_unset=True), "CreateChatCompletionResponse")
    sent = fake_upstream.last
    assert sent.body is not None and sent.body["model"] == UPSTREAM_MODEL
    assert sent.authorization == "Bearer sk-upstream-secret-0123456789"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
