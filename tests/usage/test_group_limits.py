"""Limits and budgets a group's members share: a request billed to a group (its key's, or a member's
default group) passes the user's own limits and the group's, whose counters every member moves."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group

from accounts import groups
from accounts.models import User
from catalogue.models import LanguageModel
from tests.gateway.conftest import Gateway, wait_for_usage
from tests.usage.conftest import Caller
from usage import limits
from usage.limits import LimitExceeded
from usage.models import Limit, UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


def _team(*members: User, default: bool = True) -> Group:
    team, _ = groups.add_group("team")
    for member in members:
        groups.add_member(team, member, default=default)
    return team


async def test_a_group_budget_shared_by_two_members_trips_once_for_both(
    store: str, alice: User, bob: User, priced_model: LanguageModel
) -> None:
    team = await sync_to_async(_team)(alice, bob)
    await Limit.objects.acreate(group=team, budget_usd=Decimal("0.10"), budget_period="day")
    one_request = priced_model.cost(10, 20)  # $0.03

    async def attempt(user: User) -> limits.Reservation | None:
        try:
            return await limits.reserve(Caller(user), priced_model, 10, 20)
        except LimitExceeded as exc:
            assert exc.code == "insufficient_quota" and "your group" in exc.message
            return None

    results = await asyncio.gather(*(attempt(alice if i % 2 else bob) for i in range(20)))
    admitted = [r for r in results if r is not None]
    # 0 -> 0.03 -> 0.06 -> 0.09 -> 0.12: four pass whoever sends them, then the group's budget is spent.
    assert len(admitted) == 4
    assert {r.group_id for r in admitted} == {team.pk}
    for reservation in admitted:
        await limits.settle(reservation, 10, 20, one_request)
    for user in (alice, bob):
        with pytest.raises(LimitExceeded):
            await limits.reserve(Caller(user), priced_model, 1, 1)


async def test_a_group_budget_is_rebuilt_from_the_ledger_rows_billed_to_it(
    store: str, alice: User, bob: User, priced_model: LanguageModel
) -> None:
    team = await sync_to_async(_team)(alice)
    await Limit.objects.acreate(group=team, budget_usd=Decimal("1.00"), budget_period="month")
    await UsageRecord.objects.acreate(user=bob, group=team, model_public_id="priced/model", cost=Decimal("1.00"))
    await UsageRecord.objects.acreate(user=alice, model_public_id="priced/model", cost=Decimal("5.00"))  # not billed
    with pytest.raises(LimitExceeded) as refused:
        await limits.reserve(Caller(alice), priced_model, 1, 1)
    assert "your group has spent $1.00 of its $1.00 monthly budget" in refused.value.message


async def test_a_request_passes_the_users_own_limits_and_the_groups(
    store: str, alice: User, bob: User, priced_model: LanguageModel
) -> None:
    team = await sync_to_async(_team)(alice, bob)
    await Limit.objects.acreate(group=team, requests_per_minute=3)
    await Limit.objects.acreate(user=alice, requests_per_minute=1)
    await limits.reserve(Caller(alice), priced_model, 1, 1)
    with pytest.raises(LimitExceeded) as own:
        await limits.reserve(Caller(alice), priced_model, 1, 1)
    assert "your account" in own.value.message
    await limits.reserve(Caller(bob), priced_model, 1, 1)
    await limits.reserve(Caller(bob), priced_model, 1, 1)
    with pytest.raises(LimitExceeded) as shared:
        await limits.reserve(Caller(bob), priced_model, 1, 1)
    assert "your group" in shared.value.message and shared.value.code == "rate_limit_exceeded"


async def test_a_group_pays_only_for_its_members_and_for_those_whose_default_group_it_is(
    store: str, alice: User, bob: User, priced_model: LanguageModel
) -> None:
    team = await sync_to_async(_team)(alice, default=False)
    await Limit.objects.acreate(group=team, requests_per_minute=1)
    # A member whose default group it is not: their requests are theirs alone.
    for _ in range(3):
        assert (await limits.reserve(Caller(alice), priced_model, 1, 1)).group_id is None
    # Someone whose default group names a group they are not in: not billed to it either.
    bob.default_group = team
    await bob.asave(update_fields=["default_group"])
    for _ in range(3):
        assert (await limits.reserve(Caller(bob), priced_model, 1, 1)).group_id is None


async def test_leaving_a_group_stops_its_billing_at_once(
    store: str, alice: User, priced_model: LanguageModel, settings: Any
) -> None:
    settings.LIMITS_CACHE_SECONDS = 3600  # what is cached would hold for an hour
    team = await sync_to_async(_team)(alice)
    await Limit.objects.acreate(group=team, requests_per_minute=1)
    assert (await limits.reserve(Caller(alice), priced_model, 1, 1)).group_id == team.pk
    await sync_to_async(groups.remove_member)(team, alice)
    for _ in range(3):
        assert (await limits.reserve(Caller(alice), priced_model, 1, 1)).group_id is None


async def test_a_groups_key_is_billed_to_its_group(store: str, alice: User, priced_model: LanguageModel) -> None:
    team = await sync_to_async(_team)()
    key, _ = await sync_to_async(groups.issue_group_key)(team, "ci", actor=alice)
    await Limit.objects.acreate(group=team, requests_per_minute=1)
    caller = Caller(key.user, key)
    assert (await limits.reserve(caller, priced_model, 1, 1)).group_id == team.pk
    with pytest.raises(LimitExceeded) as refused:
        await limits.reserve(caller, priced_model, 1, 1)
    assert "your group" in refused.value.message


def test_the_ledger_row_names_the_group_a_request_was_billed_to(gateway: Gateway) -> None:
    team = _team(gateway.user)
    answer = gateway.client().chat.completions.create(
        model=gateway.model.public_id, messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content
    (row,) = wait_for_usage(1, user=gateway.user)
    assert row.group_id == team.pk
