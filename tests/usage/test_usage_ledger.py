"""The usage ledger: one row per request with tokens, cost, latency, status; key last_used."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import openai
import pytest

from accounts.keys import create_key
from accounts.models import ApiKey, User
from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway.conftest import MODEL, Gateway, wait_for_usage
from usage.models import UsageRecord

MESSAGES: Any = [{"role": "user", "content": "one two three"}]


def test_a_completion_writes_one_row_with_tokens_cost_and_timing(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="four five"))
    completion = gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    [row] = wait_for_usage(1)
    assert completion.usage is not None
    assert (row.prompt_tokens, row.completion_tokens) == (completion.usage.prompt_tokens, 2)
    assert not row.usage_estimated
    assert row.cost == (Decimal(row.prompt_tokens) * 1 + Decimal(2) * 2) / 1_000_000
    assert (row.user_id, row.api_key_id, row.model_id, row.model_public_id) == (
        gateway.user.pk,
        gateway.key.pk,
        gateway.model.pk,
        MODEL,
    )
    assert (row.status, row.source, row.stream, row.ttft_ms) == (200, "api", False, None)
    assert row.latency_ms >= 0


def test_a_stream_records_the_upstream_usage_and_time_to_first_token(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="a b c d e", chunks=5))
    list(gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    [row] = wait_for_usage(1)
    assert (row.prompt_tokens, row.completion_tokens, row.usage_estimated) == (3, 5, False)
    assert row.stream and row.ttft_ms is not None and row.ttft_ms <= row.latency_ms


@pytest.mark.parametrize("stream", [False, True])
def test_usage_is_estimated_when_the_upstream_reports_none(
    gateway: Gateway, fake_upstream: FakeUpstream, stream: bool
) -> None:
    fake_upstream.queue(Reply(content="a reasonably long answer of several words", usage=False))
    result = gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=stream)
    if stream:
        list(result)  # type: ignore[arg-type]
    [row] = wait_for_usage(1)
    assert row.usage_estimated and row.prompt_tokens > 0 and row.completion_tokens > 0
    assert row.cost > 0


@pytest.mark.usefixtures("one_attempt")
def test_failed_requests_are_recorded_with_their_status(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(status=500))
    with pytest.raises(openai.InternalServerError):
        gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    with pytest.raises(openai.NotFoundError):
        gateway.client().chat.completions.create(model="acme/nope", messages=MESSAGES)
    rows = wait_for_usage(2)
    assert sorted((r.status, r.error_code, r.model_public_id) for r in rows) == [
        (404, "model_not_found", "acme/nope"),
        (502, "upstream_error", MODEL),
    ]
    assert all(r.completion_tokens == 0 for r in rows)


def test_usage_is_charged_to_the_keys_owner_and_nobody_else(gateway: Gateway, bob: User) -> None:
    _key, bobs_secret = create_key(bob, "bob's")
    gateway.client(bobs_secret).chat.completions.create(model=MODEL, messages=MESSAGES)
    [row] = wait_for_usage(1)
    assert row.user_id == bob.pk
    assert not UsageRecord.objects.filter(user=gateway.user).exists()


def test_last_used_is_set_on_use_without_a_write_per_request(gateway: Gateway) -> None:
    client = gateway.client()
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    wait_for_usage(1)
    first = _last_used(gateway.key.pk)
    assert first is not None
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    wait_for_usage(2)
    assert _last_used(gateway.key.pk) == first, "rewritten within the minute"


def _last_used(pk: int) -> Any:
    for _ in range(100):
        value = ApiKey.objects.get(pk=pk).last_used_at
        if value is not None:
            return value
        time.sleep(0.02)
    return None
