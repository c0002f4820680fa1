"""The response cache's two stores, PostgreSQL and Redis: expiry by core.clock, entry and total caps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core.clock import ManualClock
from gateway import cache
from tests.scaleout.redis_server import store_under_test

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["postgresql", "redis"])
def store(request: pytest.FixtureRequest, settings: Any, clock: ManualClock) -> Iterator[str]:
    yield store_under_test(request, settings)


def _value(size: int) -> dict[str, Any]:
    return {"answer": {"text": "x" * size}, "usage": [1, 2]}


async def test_an_entry_is_served_until_its_ttl_is_over(store: str, clock: ManualClock) -> None:
    await cache.put("k", _value(10), 60)
    got = await cache.get("k")
    assert got is not None and got["answer"] == {"text": "x" * 10} and got["usage"] == [1, 2]
    assert await cache.get("other") is None
    clock.advance(61)
    assert await cache.get("k") is None


async def test_an_entry_over_the_size_cap_is_not_kept(store: str, settings: Any) -> None:
    settings.GATEWAY_CACHE_MAX_ENTRY_BYTES = 1024
    await cache.put("big", _value(2000), 60)
    assert await cache.get("big") is None


async def test_the_oldest_entries_go_first_past_the_total_cap(store: str, settings: Any, clock: ManualClock) -> None:
    settings.GATEWAY_CACHE_MAX_TOTAL_BYTES = 2500
    for name in ("a", "b", "c", "d"):
        await cache.put(name, _value(1000), 60)
        clock.advance(1)
    assert [await cache.get(name) is not None for name in ("a", "b", "c", "d")] == [False, False, True, True]
    await cache.put("c", _value(1000), 60)  # written again: counted once
    assert await cache.get("d") is not None
