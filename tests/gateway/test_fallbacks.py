"""Fallbacks across models, on real loopback upstreams: the requested model's one deployment is
refused (a dead port), its fallback is another model on the `backup` fake upstream.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from django.contrib.auth.models import Group

from catalogue.models import Fallback, LanguageModel, Provider
from core.clock import ManualClock
from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway.conftest import MODEL, Gateway, wait_for_usage
from tests.live_server import free_port

pytestmark = pytest.mark.django_db(transaction=True)

LARGE = "acme/chat-large"
OTHER = "acme/chat-other"
MESSAGES: Any = [{"role": "user", "content": "Say hello"}]


def _model(public_id: str, provider: Provider, **fields: Any) -> LanguageModel:
    return LanguageModel.objects.create(
        public_id=public_id, provider=provider, upstream_model="backup-large", max_output_tokens=1000, **fields
    )


@pytest.fixture
def large(gateway: Gateway, backup: FakeUpstream, clock: ManualClock) -> LanguageModel:
    provider = Provider.objects.create(name="backup", base_url=backup.base_url, read_timeout=5)
    model = _model(LARGE, provider, context_length=100_000)
    Fallback.objects.create(model=gateway.model, to=model, reason=Fallback.Reason.FAILURE)
    return model


@pytest.fixture
def dead(gateway: Gateway) -> Gateway:
    """The requested model's only deployment refuses connections."""
    gateway.provider.base_url = f"http://127.0.0.1:{free_port()}/v1"
    gateway.provider.save()
    return gateway


def test_a_fallback_answers_when_every_deployment_of_the_model_fails(
    dead: Gateway, large: LanguageModel, backup: FakeUpstream
) -> None:
    raw = dead.client().chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    reply = raw.parse()
    assert reply.choices[0].message.content == "from the backup"
    assert reply.model == LARGE
    assert raw.headers["x-chatsite-model"] == LARGE
    assert [(r.body or {})["model"] for r in backup.chat_requests()] == ["backup-large"]
    (row,) = wait_for_usage(1)
    assert (row.model_public_id, row.answered_by, row.model_id, row.status) == (MODEL, LARGE, large.pk, 200)
    assert row.attempts == 2, "one at the dead deployment, one at the fallback's"
    assert row.deployment is not None and row.deployment.provider.name == "backup"


def test_a_streamed_answer_falls_back_before_its_first_byte(
    dead: Gateway, large: LanguageModel, backup: FakeUpstream
) -> None:
    with dead.client().chat.completions.with_streaming_response.create(
        model=MODEL, messages=MESSAGES, stream=True
    ) as raw:
        assert raw.headers["x-chatsite-model"] == LARGE
        chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "from the backup"
    assert {c.model for c in chunks} == {LARGE}
    (row,) = wait_for_usage(1)
    assert (row.model_public_id, row.answered_by, row.stream) == (MODEL, LARGE, True)


def test_anthropic_messages_fall_back_and_name_the_model_that_answered(
    dead: Gateway, large: LanguageModel, backup: FakeUpstream
) -> None:
    client = anthropic.Anthropic(
        base_url=dead.url, api_key=dead.secret, max_retries=0, http_client=dead.app.sdk_client()
    )
    message = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert message.model == LARGE
    assert message.content[0].text == "from the backup"  # type: ignore[union-attr]
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as events:
        assert events.get_final_message().model == LARGE
    assert [row.answered_by for row in wait_for_usage(2)] == [LARGE, LARGE]


def test_the_requested_model_answers_itself_when_it_can(
    gateway: Gateway, large: LanguageModel, fake_upstream: FakeUpstream, backup: FakeUpstream
) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    assert raw.parse().model == MODEL
    assert raw.headers["x-chatsite-model"] == MODEL
    assert backup.chat_requests() == []
    (row,) = wait_for_usage(1)
    assert (row.answered_by, row.model_id) == ("", gateway.model.pk)


def test_fallbacks_are_tried_in_order_and_a_failing_one_is_passed_over(
    dead: Gateway, large: LanguageModel, backup: FakeUpstream
) -> None:
    broken = Provider.objects.create(name="broken", base_url=f"http://127.0.0.1:{free_port()}/v1")
    first = _model(OTHER, broken)
    Fallback.objects.filter(model=dead.model).update(position=1)
    Fallback.objects.create(model=dead.model, to=first, reason=Fallback.Reason.FAILURE, position=0)
    assert dead.client().chat.completions.create(model=MODEL, messages=MESSAGES).model == LARGE
    (row,) = wait_for_usage(1)
    assert (row.answered_by, row.attempts) == (LARGE, 3)


def test_a_key_not_allowed_the_fallback_gets_the_models_own_error(
    dead: Gateway, large: LanguageModel, backup: FakeUpstream
) -> None:
    dead.key.allowed_models = [MODEL]
    dead.key.save()
    with pytest.raises(openai.APIStatusError) as caught:
        dead.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.status_code == 503
    assert backup.chat_requests() == [], "a fallback is never a way around a key's scope"
    (row,) = wait_for_usage(1)
    assert (row.status, row.answered_by) == (503, "")


def test_a_fallback_restricted_to_a_group_the_caller_is_not_in_is_never_used(
    dead: Gateway, large: LanguageModel, backup: FakeUpstream
) -> None:
    large.groups.add(Group.objects.create(name="staff"))
    with pytest.raises(openai.APIStatusError) as caught:
        dead.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.status_code == 503
    assert backup.chat_requests() == []


def test_a_request_the_upstream_refuses_as_bad_does_not_fall_back(
    gateway: Gateway, large: LanguageModel, fake_upstream: FakeUpstream, backup: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(status=400, error_message="bad messages"))
    with pytest.raises(openai.BadRequestError):
        gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    assert backup.chat_requests() == []


def test_a_request_longer_than_the_context_goes_to_the_context_fallback(
    gateway: Gateway, large: LanguageModel, fake_upstream: FakeUpstream, backup: FakeUpstream
) -> None:
    gateway.model.context_length = 2000
    gateway.model.max_output_tokens = 100
    gateway.model.save()
    Fallback.objects.filter(model=gateway.model).update(reason=Fallback.Reason.CONTEXT)
    long: Any = [{"role": "user", "content": "word " * 4000}]
    raw = gateway.client().chat.completions.with_raw_response.create(model=MODEL, messages=long, max_tokens=50)
    assert raw.parse().model == LARGE
    assert raw.headers["x-chatsite-model"] == LARGE
    assert fake_upstream.chat_requests() == [], "never sent to a model it does not fit"
    short = gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=50)
    assert short.model == MODEL
    assert [row.answered_by for row in wait_for_usage(2)] == [LARGE, ""]


def test_a_context_fallback_that_does_not_fit_either_is_not_used(
    gateway: Gateway, large: LanguageModel, fake_upstream: FakeUpstream, backup: FakeUpstream
) -> None:
    gateway.model.context_length = 2000
    gateway.model.max_output_tokens = 100
    gateway.model.save()
    large.context_length = 2000
    large.max_output_tokens = 100
    large.save()
    Fallback.objects.filter(model=gateway.model).update(reason=Fallback.Reason.CONTEXT)
    long: Any = [{"role": "user", "content": "word " * 4000}]
    gateway.client().chat.completions.create(model=MODEL, messages=long, max_tokens=50)
    assert len(fake_upstream.chat_requests()) == 1
    assert backup.chat_requests() == []
