"""The circuit breaker's rules, on both stores (this process's memory, and Redis shared by workers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core.clock import ManualClock
from gateway import health
from gateway.errors import UpstreamFault
from tests.scaleout.redis_server import store_under_test

FAILURE = UpstreamFault(retryable=True)
UNREACHABLE = UpstreamFault(retryable=True, down=True)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, settings: Any, clock: ManualClock) -> Iterator[str]:
    name = store_under_test(request, settings)
    health.forget_local_state()
    yield name
    health.forget_local_state()


async def _available(deployment_id: int, now: float) -> bool:
    return (await health.states([deployment_id]))[deployment_id].available_at() <= now


async def test_consecutive_failures_trip_for_a_cooldown_that_doubles(store: str, clock: ManualClock) -> None:
    await health.failed(1, FAILURE)
    await health.failed(1, FAILURE)
    assert await _available(1, clock.time())
    await health.failed(1, FAILURE)  # the third in a row
    assert not await _available(1, clock.time())
    clock.advance(5)
    state = (await health.states([1]))[1]
    assert state.label(clock.time()) == "half-open"
    await health.failed(1, FAILURE)  # the half-open trial failed: it trips again, for twice as long
    clock.advance(9.9)
    assert not await _available(1, clock.time())
    clock.advance(0.1)
    assert await _available(1, clock.time())
    await health.succeeded(1)
    assert (await health.states([1]))[1] == health.HEALTHY


async def test_an_unreachable_host_trips_at_once_and_is_worth_probing(store: str, clock: ManualClock) -> None:
    state = await health.failed(2, UNREACHABLE)
    assert state is not None and state.unreachable and state.cooling_until == pytest.approx(clock.time() + 5)


async def test_a_success_between_failures_starts_the_count_again(store: str, clock: ManualClock) -> None:
    for _ in range(5):
        await health.failed(3, FAILURE)
        await health.failed(3, FAILURE)
        await health.succeeded(3)
    assert await _available(3, clock.time())


async def test_retry_after_keeps_a_deployment_aside_even_after_a_success(store: str, clock: ManualClock) -> None:
    await health.failed(4, UpstreamFault(retryable=True, retry_after=30))
    await health.succeeded(4)
    assert not await _available(4, clock.time())
    clock.advance(30)
    assert await _available(4, clock.time())


async def test_the_cooldown_stops_doubling_at_its_cap(store: str, clock: ManualClock, settings: Any) -> None:
    settings.ROUTING_COOLDOWN_MAX_SECONDS = 12
    for _ in range(4):  # 5, 10, then 12, 12
        await health.failed(5, UNREACHABLE)
    state = (await health.states([5]))[5]
    assert state.cooling_until == pytest.approx(clock.time() + 12)


async def test_one_caller_wins_a_claim_until_it_expires(store: str, clock: ManualClock) -> None:
    assert await health.claim("trial:6", 5)
    assert not await health.claim("trial:6", 5)
    if store == "memory":  # Redis expires claims in its own time; the memory store reads the test's clock
        clock.advance(5)
        assert await health.claim("trial:6", 5)
