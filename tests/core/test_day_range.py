"""Date ranges typed into a page: parsed, or refused with a reason a person can read."""

from __future__ import annotations

from datetime import date

import pytest

from core.inputs import BadInput, day_range

TODAY = date(2026, 3, 10)


def test_empty_dates_mean_the_last_days_up_to_today() -> None:
    assert day_range("", "", today=TODAY, default_days=30, max_days=400) == (date(2026, 2, 9), TODAY)
    assert day_range(" 2026-03-01 ", "", today=TODAY, default_days=30, max_days=400) == (date(2026, 3, 1), TODAY)


@pytest.mark.parametrize(
    ("start", "end", "reason"),
    [
        ("yesterday", "", "must be a date written YYYY-MM-DD"),
        ("2026-02-30", "", "is not a day of the calendar"),
        ("2026-03-05", "2026-03-01", "is after the end date"),
        ("2020-01-01", "2026-03-01", "spans more than 400 days"),
        ("2026-03-01\x00", "", "must be a date written YYYY-MM-DD"),
    ],
)
def test_a_bad_range_is_refused_with_its_reason(start: str, end: str, reason: str) -> None:
    with pytest.raises(BadInput, match=reason):
        day_range(start, end, today=TODAY, default_days=30, max_days=400)
