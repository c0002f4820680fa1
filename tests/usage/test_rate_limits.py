"""Requests and tokens per minute: they trip, they recover, and the headers tell the truth.

Time is the test's clock (core.clock.ManualClock), which moves only when told: remaining counts
and Retry-After are exact whatever the machine's speed. Each test runs against the in-process
counters and against a real Redis (which counts with the time the test's clock gives it).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import LanguageModel
from core.clock import ManualClock
from tests.usage.conftest import Caller
from usage import limits
from usage.models import Limit

pytestmark = pytest.mark.django_db(transaction=True)


async def _reserve(caller: Caller, model: LanguageModel, prompt: int = 10, completion: int = 10) -> limits.Reservation:
    return await limits.reserve(caller, model, prompt, completion)


async def test_a_caller_without_limits_gets_no_headers_and_is_never_refused(
    store: str, alice: User, priced_model: LanguageModel
) -> None:
    for _ in range(50):
        reservation = await _reserve(Caller(alice), priced_model)
        assert limits.headers(reservation) == {}


async def test_requests_per_minute_trip_with_429_and_recover(
    store: str, clock: ManualClock, alice: User, priced_model: LanguageModel
) -> None:
    await Limit.objects.acreate(user=alice, requests_per_minute=3)
    caller = Caller(alice)
    remaining = []
    for _ in range(3):
        remaining.append(limits.headers(await _reserve(caller, priced_model))["x-ratelimit-remaining-requests"])
    assert remaining == ["2", "1", "0"]

    with pytest.raises(limits.LimitExceeded) as refused:
        await _reserve(caller, priced_model)
    error = refused.value
    assert error.code == "rate_limit_exceeded"
    assert error.type == "requests"
    assert "requests per minute" in error.message and "Limit 3" in error.message
    assert error.headers["retry-after"] == "20"  # one request refills in 60s/3
    assert error.headers["x-ratelimit-limit-requests"] == "3"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"

    clock.advance(19.9)
    with pytest.raises(limits.LimitExceeded) as still:
        await _reserve(caller, priced_model)
    assert still.value.headers["retry-after"] == "1"
    clock.advance(0.1)
    recovered = await _reserve(caller, priced_model)
    assert limits.headers(recovered)["x-ratelimit-remaining-requests"] == "0"


async def test_tokens_per_minute_reserve_the_estimate_and_settle_gives_back_the_rest(
    store: str, clock: ManualClock, alice: User, priced_model: LanguageModel
) -> None:
    await Limit.objects.acreate(user=alice, tokens_per_minute=1000)
    caller = Caller(alice)

    first = await _reserve(caller, priced_model, prompt=100, completion=500)
    assert first.reserved_tokens == 600
    assert limits.headers(first)["x-ratelimit-remaining-tokens"] == "400"
    with pytest.raises(limits.LimitExceeded) as refused:
        await _reserve(caller, priced_model, prompt=100, completion=500)
    assert refused.value.type == "tokens"
    assert "tokens per minute (TPM)" in refused.value.message

    # The reply used 150 tokens of the 600 reserved: 450 come back and the same request fits.
    await limits.settle(first, 100, 50, Decimal("0.15"))
    second = await _reserve(caller, priced_model, prompt=100, completion=500)
    assert limits.headers(second)["x-ratelimit-remaining-tokens"] == "250"


async def test_tokens_per_minute_recover_after_the_window(
    store: str, clock: ManualClock, alice: User, priced_model: LanguageModel
) -> None:
    await Limit.objects.acreate(user=alice, tokens_per_minute=100)
    caller = Caller(alice)
    await _reserve(caller, priced_model, prompt=50, completion=50)
    with pytest.raises(limits.LimitExceeded) as refused:
        await _reserve(caller, priced_model, prompt=10, completion=10)
    assert refused.value.headers["retry-after"] == "12"  # 20 of 100 tokens refill in 12 of 60 s
    clock.advance(12)
    reservation = await _reserve(caller, priced_model, prompt=10, completion=10)
    assert limits.headers(reservation)["x-ratelimit-remaining-tokens"] == "0"
    clock.advance(60)
    assert (await limits.peek_headers(caller))["x-ratelimit-remaining-tokens"] == "100"


async def test_usage_beyond_the_reservation_is_charged_and_delays_the_next_request(
    store: str, clock: ManualClock, alice: User, priced_model: LanguageModel
) -> None:
    await Limit.objects.acreate(user=alice, tokens_per_minute=1000)
    caller = Caller(alice)
    reservation = await _reserve(caller, priced_model, prompt=10, completion=10)
    await limits.settle(reservation, 900, 100, Decimal(0))  # the estimate was far too low
    with pytest.raises(limits.LimitExceeded):
        await _reserve(caller, priced_model, prompt=10, completion=10)


async def test_a_request_larger_than_the_whole_token_limit_passes_only_on_a_full_bucket(
    store: str, clock: ManualClock, alice: User, priced_model: LanguageModel
) -> None:
    await Limit.objects.acreate(user=alice, tokens_per_minute=100)
    caller = Caller(alice)
    big = await _reserve(caller, priced_model, prompt=20, completion=1000)
    assert limits.headers(big)["x-ratelimit-remaining-tokens"] == "0"
    await limits.settle(big, 20, 30, Decimal(0))  # it used 50: the other 50 come back
    small = await _reserve(caller, priced_model, prompt=10, completion=10)
    assert limits.headers(small)["x-ratelimit-remaining-tokens"] == "30"
    with pytest.raises(limits.LimitExceeded) as refused:
        await _reserve(caller, priced_model, prompt=20, completion=1000)
    assert "more than the whole limit" in refused.value.message


async def test_settling_twice_gives_back_once(
    store: str, clock: ManualClock, alice: User, priced_model: LanguageModel
) -> None:
    await Limit.objects.acreate(user=alice, tokens_per_minute=1000)
    reservation = await _reserve(Caller(alice), priced_model, prompt=100, completion=400)
    await limits.settle(reservation, 0, 0, Decimal(0))
    await limits.settle(reservation, 0, 0, Decimal(0))
    after = await _reserve(Caller(alice), priced_model, prompt=100, completion=400)
    assert limits.headers(after)["x-ratelimit-remaining-tokens"] == "500"


async def test_a_key_limit_binds_that_key_only_while_the_user_limit_binds_every_key_and_the_chat(
    store: str, clock: ManualClock, alice: User, priced_model: LanguageModel
) -> None:
    limited_key, _ = await _create_key(alice, "limited")
    other_key, _ = await _create_key(alice, "other")
    await Limit.objects.acreate(api_key=limited_key, requests_per_minute=1)
    await Limit.objects.acreate(user=alice, requests_per_minute=4)

    await _reserve(Caller(alice, limited_key), priced_model)
    with pytest.raises(limits.LimitExceeded) as refused:
        await _reserve(Caller(alice, limited_key), priced_model)
    assert "your API key" in refused.value.message

    # The key's refusal counted nothing against the user: 3 of 4 remain, shared by key and chat.
    assert (
        limits.headers(await _reserve(Caller(alice, other_key), priced_model))["x-ratelimit-remaining-requests"] == "2"
    )
    chat = limits.headers(await _reserve(Caller(alice, None, "chat"), priced_model))
    assert chat["x-ratelimit-remaining-requests"] == "1"
    await _reserve(Caller(alice, other_key), priced_model)
    with pytest.raises(limits.LimitExceeded) as user_refused:
        await _reserve(Caller(alice, None, "chat"), priced_model)
    assert "your account" in user_refused.value.message


async def test_another_users_traffic_never_counts_against_mine(
    store: str, clock: ManualClock, alice: User, bob: User, priced_model: LanguageModel
) -> None:
    await Limit.objects.acreate(requests_per_minute=2)  # the default, for each user on their own
    for _ in range(2):
        await _reserve(Caller(bob), priced_model)
    with pytest.raises(limits.LimitExceeded):
        await _reserve(Caller(bob), priced_model)
    mine = limits.headers(await _reserve(Caller(alice), priced_model))
    assert mine["x-ratelimit-remaining-requests"] == "1"


async def test_headers_carry_the_limit_remaining_and_reset_of_both_trios(
    store: str, clock: ManualClock, alice: User, priced_model: LanguageModel
) -> None:
    await Limit.objects.acreate(user=alice, requests_per_minute=60, tokens_per_minute=6000)
    reservation = await _reserve(Caller(alice), priced_model, prompt=100, completion=500)
    headers = limits.headers(reservation)
    assert headers["x-ratelimit-limit-requests"] == "60"
    assert headers["x-ratelimit-remaining-requests"] == "59"
    assert headers["x-ratelimit-reset-requests"] == "1s"
    assert headers["x-ratelimit-limit-tokens"] == "6000"
    assert headers["x-ratelimit-remaining-tokens"] == "5400"
    assert headers["x-ratelimit-reset-tokens"] == "6s"
    peeked = await limits.peek_headers(Caller(alice))
    assert peeked["x-ratelimit-remaining-requests"] == "59"
    assert peeked["x-ratelimit-limit-tokens"] == "6000"


async def test_the_tighter_scope_is_the_one_reported(
    store: str, clock: ManualClock, alice: User, priced_model: LanguageModel
) -> None:
    key, _ = await _create_key(alice, "k")
    await Limit.objects.acreate(user=alice, requests_per_minute=100)
    await Limit.objects.acreate(api_key=key, requests_per_minute=5)
    headers = limits.headers(await _reserve(Caller(alice, key), priced_model))
    assert headers["x-ratelimit-limit-requests"] == "5"
    assert headers["x-ratelimit-remaining-requests"] == "4"


async def test_a_changed_limit_applies_at_once(
    store: str, clock: ManualClock, alice: User, priced_model: LanguageModel
) -> None:
    row = await Limit.objects.acreate(user=alice, requests_per_minute=100)
    await _reserve(Caller(alice), priced_model)
    row.requests_per_minute = 1
    await row.asave()
    with pytest.raises(limits.LimitExceeded):
        await _reserve(Caller(alice), priced_model)


async def _create_key(user: User, name: str) -> Any:
    from asgiref.sync import sync_to_async

    return await sync_to_async(create_key)(user, name)


async def test_when_redis_is_unreachable_requests_pass_without_headers(
    settings: Any, alice: User, priced_model: LanguageModel
) -> None:
    from tests.live_server import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    await Limit.objects.acreate(user=alice, requests_per_minute=1)
    for _ in range(3):
        reservation = await _reserve(Caller(alice), priced_model)
        assert limits.headers(reservation) == {}
        await limits.settle(reservation, 1, 1, Decimal(0))
    assert await limits.peek_headers(Caller(alice)) == {}
