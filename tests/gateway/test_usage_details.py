"""The upstream's usage details (cached and reasoning tokens) reach every client, its other fields do not."""

from __future__ import annotations

import json
from typing import Any

from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway.conftest import MODEL, Gateway

# A reseller's price in the usage object is the operator's business, not the caller's.
DETAILED = Reply(
    content="Thought it through.",
    reasoning_tokens=5,
    usage_extra={"prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0}, "cost": 0.0012},
)
MESSAGES: Any = [{"role": "user", "content": "one two three four"}]


def _assert_detailed(usage: dict[str, Any]) -> None:
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 5}
    assert usage["prompt_tokens_details"] == {"cached_tokens": 3, "audio_tokens": 0}
    assert "cost" not in usage


def _chat(gateway: Gateway, **extra: Any) -> Any:
    return gateway.http.post(
        "/v1/chat/completions", headers=gateway.headers(), json={"model": MODEL, "messages": MESSAGES, **extra}
    )


def test_a_chat_answer_carries_the_upstreams_details_and_not_its_prices(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(DETAILED)
    _assert_detailed(_chat(gateway).json()["usage"])


def test_a_chat_streams_usage_chunk_carries_the_upstreams_details_and_not_its_prices(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(DETAILED)
    body = _chat(gateway, stream=True, stream_options={"include_usage": True}).text
    chunks = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {")]
    [usage] = [chunk["usage"] for chunk in chunks if chunk.get("usage")]
    _assert_detailed(usage)


def test_a_translated_responses_stream_counts_reasoning_and_cached_tokens(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(DETAILED)
    with gateway.client().responses.stream(model=MODEL, input="one two three four") as stream:
        final = stream.get_final_response()
    assert final.usage is not None
    assert final.usage.output_tokens_details.reasoning_tokens == 5
    assert final.usage.input_tokens_details.cached_tokens == 3
