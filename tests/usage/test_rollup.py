"""The daily rollup equals a direct aggregation of the ledger, however often and in whatever steps it runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from accounts import keys
from accounts.models import User
from tests.conftest import make_user
from usage.analytics import p95
from usage.models import DailyUsage, RollupState, UsageRecord
from usage.rollup import LATENCY_BOUNDS_MS, catch_up, fold

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 3, 10, 12, tzinfo=UTC)


def _ledger(user: User, **fields: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "model_public_id": "acme/chat",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost": Decimal("0.01"),
        "latency_ms": 300,
        "created_at": NOON,
    }
    return UsageRecord.objects.create(user=user, **{**values, **fields})


def _mixed_ledger(alice: User, bob: User) -> None:
    research = Group.objects.create(name="research")
    key, _ = keys.create_key(bob, "ci")
    _ledger(alice)
    _ledger(alice, latency_ms=99_000, status=502, created_at=NOON - timedelta(days=1))
    _ledger(alice, model_public_id="acme/large", group=research, prompt_tokens=1000, cost=Decimal("1.5"))
    _ledger(bob, api_key=key, group=research, source="chat", latency_ms=100)
    _ledger(bob, api_key=key, group=research, latency_ms=101, created_at=NOON.replace(hour=23, minute=59))
    _ledger(bob, status=429, latency_ms=0, created_at=NOON + timedelta(hours=12))  # the next UTC day


def _direct() -> set[tuple[Any, ...]]:
    rows = (
        UsageRecord.objects.annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values_list("day", "model_public_id", "user_id", "group_id", "api_key_id", "deployment_id", "source")
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=Q(status__gte=400)),
            input_tokens=Sum("prompt_tokens"),
            output_tokens=Sum("completion_tokens"),
            spent=Sum("cost"),
            latency=Sum("latency_ms"),
        )
        .order_by()
    )
    return set(rows)


def _rolled_up() -> set[tuple[Any, ...]]:
    rows = DailyUsage.objects.values_list(
        "day", "model_public_id", "user_id", "group_id", "api_key_id", "deployment_id", "source",
        "requests", "errors", "input_tokens", "output_tokens", "cost", "latency_ms_sum",
    )  # fmt: skip
    return set(rows)


def test_the_rollup_equals_a_direct_aggregation_of_the_ledger(alice: User, bob: User) -> None:
    _mixed_ledger(alice, bob)
    catch_up()  # counts the ids it passed, not rows: earlier tests moved the id sequence
    assert _rolled_up() == _direct()
    assert DailyUsage.objects.filter(day="2026-03-11").get().errors == 1
    assert sum(DailyUsage.objects.values_list("latency_count", flat=True)) == 6


def test_running_it_again_or_in_small_steps_does_not_count_twice(alice: User, bob: User) -> None:
    _mixed_ledger(alice, bob)
    while fold(batch=2):
        pass
    assert fold() == 0 and catch_up() == 0
    assert _rolled_up() == _direct()
    assert RollupState.objects.get().last_id == UsageRecord.objects.latest("id").pk


def test_a_row_written_late_lands_in_its_own_day(alice: User, bob: User) -> None:
    _mixed_ledger(alice, bob)
    catch_up()
    _ledger(alice, created_at=NOON - timedelta(days=3), prompt_tokens=7)  # buffered, written after the fold
    _ledger(alice, prompt_tokens=1)  # joins a row the rollup already has
    catch_up()
    assert _rolled_up() == _direct()
    assert DailyUsage.objects.get(day="2026-03-07").input_tokens == 7


def test_the_latency_histogram_counts_each_request_in_its_bucket(alice: User) -> None:
    for latency in (0, 100, 101, 250, 61_000):
        _ledger(alice, latency_ms=latency)
    catch_up()
    buckets = DailyUsage.objects.get().latency_buckets
    assert len(buckets) == len(LATENCY_BOUNDS_MS) + 1
    assert buckets[:2] == [2, 2] and buckets[-1] == 1 and sum(buckets) == 5


def test_p95_is_estimated_within_its_bucket() -> None:
    assert p95([0] * 11) is None
    assert p95([100] + [0] * 10) == 95.0  # 95 % of the way through 0-100 ms
    assert p95([90, 10] + [0] * 9) == 175.0  # halfway through 100-250 ms
    assert p95([0] * 10 + [3]) == float(LATENCY_BOUNDS_MS[-1])


def test_the_command_brings_the_rollup_up_to_date(alice: User) -> None:
    _ledger(alice)
    _ledger(make_user("carol"))
    out = StringIO()
    call_command("usage", "rollup", "--batch", "1", stdout=out)
    assert f"ledger rows up to id {UsageRecord.objects.latest('id').pk}" in out.getvalue()
    assert _rolled_up() == _direct()
