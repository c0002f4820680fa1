"""The exact-match response cache on a real loopback upstream: hits answer without it, per user."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import openai
import pytest

from accounts.keys import create_key
from accounts.models import User
from core.clock import ManualClock
from gateway.models import CachedAnswer
from tests.fake_upstream import FakeUpstream
from tests.gateway.conftest import MODEL, Gateway, wait_for_usage
from usage.models import Limit

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES: Any = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def cached(gateway: Gateway, clock: ManualClock) -> Gateway:
    gateway.model.cache_ttl_seconds = 60
    gateway.model.save()
    return gateway


def ask(gateway: Gateway, secret: str | None = None, headers: dict[str, str] | None = None, **fields: Any) -> Any:
    client = gateway.client(secret)
    return client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, extra_headers=headers, **fields
    )


def test_an_identical_request_is_answered_from_the_cache_at_no_cost(
    cached: Gateway, fake_upstream: FakeUpstream
) -> None:
    first, second = ask(cached), ask(cached)
    assert first.headers["x-chatsite-cache"] == "miss"
    assert second.headers["x-chatsite-cache"] == "hit"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert second.parse().model == MODEL
    assert len(fake_upstream.chat_requests()) == 1
    rows = wait_for_usage(2)
    assert [(r.cached, r.cost > 0) for r in rows] == [(False, True), (True, False)]
    assert rows[1].cost == Decimal(0) and rows[1].prompt_tokens == rows[0].prompt_tokens
    assert rows[1].deployment is None


def test_a_cached_stream_is_replayed_as_a_stream_with_its_chunks(cached: Gateway, fake_upstream: FakeUpstream) -> None:
    def stream() -> tuple[str, list[Any]]:
        with cached.client().chat.completions.with_streaming_response.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        ) as raw:
            return raw.headers["x-chatsite-cache"], [c.model_dump() for c in raw.parse()]

    (miss, chunks), (hit, replayed) = stream(), stream()
    assert (miss, hit) == ("miss", "hit")
    assert replayed == chunks
    assert replayed[-1]["usage"] is not None and replayed[-1]["choices"] == []
    assert len(fake_upstream.chat_requests()) == 1
    assert [r.cached for r in wait_for_usage(2)] == [False, True]
    assert ask(cached).headers["x-chatsite-cache"] == "miss", "a streamed answer is not a JSON one"


def test_another_users_identical_request_is_not_answered_from_the_first_users_entry(
    cached: Gateway, fake_upstream: FakeUpstream
) -> None:
    bob = User.objects.create_user("bob", "bob@example.com", "correct-horse-battery-staple")
    _key, secret = create_key(bob, "bob's")
    ask(cached)
    assert ask(cached, secret).headers["x-chatsite-cache"] == "miss"
    assert len(fake_upstream.chat_requests()) == 2
    cached.model.cache_shared = True
    cached.model.save()
    ask(cached)
    assert ask(cached, secret).headers["x-chatsite-cache"] == "hit"


def test_cache_control_no_cache_asks_upstream_and_no_store_keeps_nothing(
    cached: Gateway, fake_upstream: FakeUpstream
) -> None:
    assert ask(cached, headers={"Cache-Control": "no-store"}).headers.get("x-chatsite-cache") is None
    assert not CachedAnswer.objects.exists()
    ask(cached)
    assert ask(cached, headers={"Cache-Control": "no-cache"}).headers["x-chatsite-cache"] == "miss"
    assert len(fake_upstream.chat_requests()) == 3


@pytest.mark.parametrize("fields", [{"n": 2}, {"n": 2, "temperature": 0.7}, {"store": False}])
def test_requests_never_cached_unless_the_operator_says_so(
    cached: Gateway, fake_upstream: FakeUpstream, fields: dict[str, Any]
) -> None:
    ask(cached, **fields)
    assert ask(cached, **fields).headers.get("x-chatsite-cache") is None
    assert len(fake_upstream.chat_requests()) == 2
    cached.model.cache_unsafe = True
    cached.model.save()
    ask(cached, **fields)
    assert ask(cached, **fields).headers["x-chatsite-cache"] == "hit"


def test_n_above_one_at_temperature_zero_is_cached(cached: Gateway, fake_upstream: FakeUpstream) -> None:
    ask(cached, n=2, temperature=0)
    assert ask(cached, n=2, temperature=0).headers["x-chatsite-cache"] == "hit"


def test_an_entry_expires_after_its_ttl(cached: Gateway, fake_upstream: FakeUpstream, clock: ManualClock) -> None:
    ask(cached)
    clock.advance(59)
    assert ask(cached).headers["x-chatsite-cache"] == "hit"
    clock.advance(2)
    assert ask(cached).headers["x-chatsite-cache"] == "miss"


def test_a_model_not_opted_in_is_never_cached(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    ask(gateway)
    assert ask(gateway).headers.get("x-chatsite-cache") is None
    assert len(fake_upstream.chat_requests()) == 2
    assert not CachedAnswer.objects.exists()


def test_entries_are_capped_in_size_and_in_total(cached: Gateway, fake_upstream: FakeUpstream, settings: Any) -> None:
    settings.GATEWAY_CACHE_MAX_ENTRY_BYTES = 10
    ask(cached)
    assert not CachedAnswer.objects.exists()
    settings.GATEWAY_CACHE_MAX_ENTRY_BYTES = 100_000
    ask(cached)
    size = CachedAnswer.objects.get().size
    settings.GATEWAY_CACHE_MAX_TOTAL_BYTES = size * 2 + size // 2
    for temperature in (0.1, 0.2, 0.3):
        ask(cached, temperature=temperature)
    assert CachedAnswer.objects.count() == 2, "the oldest went first"
    assert ask(cached, temperature=0.3).headers["x-chatsite-cache"] == "hit"
    assert ask(cached).headers["x-chatsite-cache"] == "miss"


def test_a_failed_answer_is_not_cached(cached: Gateway, fake_upstream: FakeUpstream) -> None:
    from tests.fake_upstream import Reply

    fake_upstream.queue(Reply(status=400, error_message="bad"))
    with pytest.raises(openai.BadRequestError):
        ask(cached)
    assert not CachedAnswer.objects.exists()
    assert ask(cached).headers["x-chatsite-cache"] == "miss"


def test_anthropic_messages_are_cached_too_and_responses_never(cached: Gateway, fake_upstream: FakeUpstream) -> None:
    import anthropic

    client = anthropic.Anthropic(
        base_url=cached.url, api_key=cached.secret, max_retries=0, http_client=cached.app.sdk_client()
    )
    first = client.messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    second = client.messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert (first.headers["x-chatsite-cache"], second.headers["x-chatsite-cache"]) == ("miss", "hit")
    assert second.parse().content == first.parse().content
    for _ in range(2):
        answer = cached.client().responses.with_raw_response.create(model=MODEL, input="Say hello")
        assert answer.headers.get("x-chatsite-cache") is None
    assert len(fake_upstream.chat_requests()) == 3


def test_a_keys_own_cache_setting_overrides_the_models(gateway: Gateway, clock: ManualClock) -> None:
    gateway.key.cache_ttl_seconds = 60  # the model caches nothing
    gateway.key.save()
    assert [ask(gateway).headers.get("x-chatsite-cache") for _ in range(2)] == ["miss", "hit"]
    _other_key, other_secret = create_key(gateway.user, "follows the model")
    assert ask(gateway, other_secret).headers.get("x-chatsite-cache") is None, "not cached for a key without it"

    gateway.model.cache_ttl_seconds = 60
    gateway.model.save()
    gateway.key.cache_ttl_seconds = 0  # this key never caches, whatever the model says
    gateway.key.save()
    assert [ask(gateway).headers.get("x-chatsite-cache") for _ in range(2)] == [None, None]
    # Entries are the user's, whichever of their keys wrote them: the first key's answer serves the other.
    assert ask(gateway, other_secret).headers.get("x-chatsite-cache") == "hit"


def test_cache_hits_count_against_rate_limits_unless_the_operator_frees_them(cached: Gateway) -> None:
    Limit.objects.create(user=cached.user, requests_per_minute=2)
    assert [ask(cached).headers.get("x-chatsite-cache") for _ in range(2)] == ["miss", "hit"]
    with pytest.raises(openai.RateLimitError):
        ask(cached)  # the hit took the second request of the minute

    cached.model.cache_hits_limited = False
    cached.model.save()
    for _ in range(3):
        hit = ask(cached)
        assert hit.headers.get("x-chatsite-cache") == "hit"
        assert hit.headers.get("x-ratelimit-remaining-requests") == "0", "the caller is told where it stands"
    with pytest.raises(openai.RateLimitError):
        cached.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Not cached"}])
    rows = wait_for_usage(7)
    assert [(r.status, r.cached) for r in rows] == [(200, False), (200, True), (429, False)] + [(200, True)] * 3 + [
        (429, False)
    ]
