"""Spending budgets per day or month: exhaustion, the ledger as the truth, no overshoot in parallel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import LanguageModel
from tests.usage.conftest import Caller
from usage import limits
from usage.limits import LimitExceeded
from usage.models import Limit, UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


async def _spend(user: User, cost: str, *, when: datetime | None = None, source: str = "api", key: Any = None) -> None:
    await UsageRecord.objects.acreate(
        user=user,
        api_key=key,
        model_public_id="priced/model",
        source=source,
        cost=Decimal(cost),
        created_at=when or datetime.now(UTC),
    )


async def test_an_exhausted_budget_answers_429_insufficient_quota_without_retry(
    store: str, alice: User, priced_model: LanguageModel
) -> None:
    await Limit.objects.acreate(user=alice, budget_usd=Decimal("1.00"), budget_period="day")
    await _spend(alice, "0.60")
    await _spend(alice, "0.40", source="chat")  # browser chats spend the same budget

    with pytest.raises(LimitExceeded) as refused:
        await limits.reserve(Caller(alice), priced_model, 10, 10)
    error = refused.value
    assert error.code == "insufficient_quota"
    assert error.type == "insufficient_quota"
    assert "$1.00 of its $1.00 daily budget" in error.message
    assert error.headers["x-should-retry"] == "false"
    tomorrow = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    seconds_left = (tomorrow - datetime.now(UTC)).total_seconds()
    assert abs(int(error.headers["retry-after"]) - seconds_left) <= 5


async def test_spending_of_an_earlier_period_does_not_count(
    store: str, alice: User, priced_model: LanguageModel
) -> None:
    await Limit.objects.acreate(user=alice, budget_usd=Decimal("1.00"), budget_period="day")
    await _spend(alice, "50.00", when=datetime.now(UTC) - timedelta(days=1, hours=1))
    await _spend(alice, "0.50")
    reservation = await limits.reserve(Caller(alice), priced_model, 10, 10)
    assert reservation.reserved_units == limits.to_units(Decimal("0.02"))


async def test_a_monthly_budget_counts_the_whole_month(store: str, alice: User, priced_model: LanguageModel) -> None:
    start, _ = limits.period_bounds("month")
    await Limit.objects.acreate(budget_usd=Decimal("2.00"), budget_period="month")  # the default
    await _spend(alice, "1.50", when=start + timedelta(seconds=1))
    await _spend(alice, "0.50")
    with pytest.raises(LimitExceeded) as refused:
        await limits.reserve(Caller(alice), priced_model, 10, 10)
    assert refused.value.code == "insufficient_quota"
    assert "monthly budget" in refused.value.message


async def test_parallel_requests_on_a_nearly_spent_budget_overshoot_by_at_most_one(
    store: str, alice: User, priced_model: LanguageModel
) -> None:
    await Limit.objects.acreate(user=alice, budget_usd=Decimal("1.00"), budget_period="month")
    await _spend(alice, "0.90")
    caller = Caller(alice)
    one_request = priced_model.cost(10, 20)  # $0.03 at most per request

    async def attempt() -> limits.Reservation | None:
        try:
            return await limits.reserve(caller, priced_model, 10, 20)
        except LimitExceeded as exc:
            assert exc.code == "insufficient_quota"
            return None

    results = await asyncio.gather(*(attempt() for _ in range(30)))
    admitted = [r for r in results if r is not None]
    # 0.90 -> 0.93 -> 0.96 -> 0.99 -> 1.02: four pass, the rest see the budget spent.
    assert len(admitted) == 4
    for reservation in admitted:  # each used all it reserved
        await _spend(alice, str(one_request))
        await limits.settle(reservation, 10, 20, one_request)
    spent = await sync_to_async(limits.spent_since)("user", alice.pk, limits.period_bounds("month")[0])
    assert Decimal("1.00") < spent <= Decimal("1.00") + one_request
    with pytest.raises(LimitExceeded):
        await limits.reserve(caller, priced_model, 1, 1)


async def test_settling_a_cheaper_reply_frees_the_difference(
    store: str, alice: User, priced_model: LanguageModel
) -> None:
    await Limit.objects.acreate(user=alice, budget_usd=Decimal("1.00"))
    await _spend(alice, "0.95")
    big = await limits.reserve(Caller(alice), priced_model, 10, 90)  # $0.10 reserved: 1.05 committed
    with pytest.raises(LimitExceeded):
        await limits.reserve(Caller(alice), priced_model, 1, 1)
    await _spend(alice, "0.01")
    await limits.settle(big, 5, 5, Decimal("0.01"))  # it cost $0.01: 0.96 committed
    await limits.reserve(Caller(alice), priced_model, 1, 1)


async def test_a_failed_request_gives_its_whole_reservation_back(
    store: str, alice: User, priced_model: LanguageModel
) -> None:
    await Limit.objects.acreate(user=alice, budget_usd=Decimal("1.00"))
    await _spend(alice, "0.99")
    failed = await limits.reserve(Caller(alice), priced_model, 10, 90)
    with pytest.raises(LimitExceeded):
        await limits.reserve(Caller(alice), priced_model, 1, 1)
    await limits.settle(failed, 0, 0, Decimal(0))
    await limits.reserve(Caller(alice), priced_model, 1, 1)


async def test_a_key_budget_counts_that_keys_spending_only(
    store: str, alice: User, priced_model: LanguageModel
) -> None:
    capped, _ = await sync_to_async(create_key)(alice, "capped")
    free, _ = await sync_to_async(create_key)(alice, "free")
    await Limit.objects.acreate(api_key=capped, budget_usd=Decimal("0.50"), budget_period="day")
    await _spend(alice, "0.50", key=capped)
    await _spend(alice, "5.00", key=free)
    with pytest.raises(LimitExceeded) as refused:
        await limits.reserve(Caller(alice, capped), priced_model, 1, 1)
    assert "your API key has spent $0.50 of its $0.50 daily budget" in refused.value.message
    await limits.reserve(Caller(alice, free), priced_model, 1, 1)
    await limits.reserve(Caller(alice, None, "chat"), priced_model, 1, 1)


async def test_a_user_override_of_zero_lifts_the_default_budget(
    store: str, alice: User, bob: User, priced_model: LanguageModel
) -> None:
    await Limit.objects.acreate(budget_usd=Decimal("1.00"))
    await Limit.objects.acreate(user=alice, budget_usd=Decimal("0"))
    await _spend(alice, "3.00")
    await _spend(bob, "3.00")
    await limits.reserve(Caller(alice), priced_model, 1, 1)
    with pytest.raises(LimitExceeded):
        await limits.reserve(Caller(bob), priced_model, 1, 1)


async def test_a_lost_counter_is_rebuilt_from_the_ledger(
    store: str, alice: User, priced_model: LanguageModel, request: pytest.FixtureRequest
) -> None:
    await Limit.objects.acreate(user=alice, budget_usd=Decimal("1.00"))
    await _spend(alice, "0.50")
    await limits.reserve(Caller(alice), priced_model, 1, 1)
    # Redis restarted (or this process did): the counters are gone, the ledger is not.
    if store == "redis":
        request.getfixturevalue("redis_server").flush()
    limits.forget_local_state()
    await _spend(alice, "0.50")
    with pytest.raises(LimitExceeded) as refused:
        await limits.reserve(Caller(alice), priced_model, 1, 1)
    assert refused.value.code == "insufficient_quota"
