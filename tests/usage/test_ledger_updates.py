"""The ledger's progress updates of rows in flight write every progress field, nulls and decimals included."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import User
from usage import ledger
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db


def test_progress_updates_write_each_rows_own_values(alice: User) -> None:
    first, second = (
        UsageRecord.objects.create(user=alice, model_public_id="m", status=ledger.IN_FLIGHT, ttft_ms=5)
        for _ in range(2)
    )
    first.completion_tokens, first.cost, first.ttft_ms, first.status = 40, Decimal("0.00012345"), None, 200
    second.completion_tokens, second.usage_estimated, second.error_code = 7, True, "interrupted"
    untouched = UsageRecord.objects.create(user=alice, model_public_id="m", completion_tokens=3)

    ledger._update_progress([first, second])

    rows = {r.pk: r for r in UsageRecord.objects.all()}
    assert (rows[first.pk].completion_tokens, rows[first.pk].cost, rows[first.pk].ttft_ms) == (
        40,
        Decimal("0.00012345"),
        None,
    )
    assert rows[first.pk].status == 200
    assert (rows[second.pk].completion_tokens, rows[second.pk].usage_estimated) == (7, True)
    assert (rows[second.pk].error_code, rows[second.pk].ttft_ms, rows[second.pk].status) == ("interrupted", 5, 102)
    assert rows[untouched.pk].completion_tokens == 3
