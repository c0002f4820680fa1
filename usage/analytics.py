"""Usage analytics read from the daily rollup (usage.DailyUsage), for staff and for a group's managers.

    scope = Scope(first, last, group_id=None)   # days included; group_id: only what was billed to it
    report(scope)                               # per-day series, breakdowns, top users, slowest deployments
    csv_rows(scope)                             # per day, model, user, group and key

Every query reads rollup rows only (days x dimensions), never the ledger, so a page costs the same at
ten million ledger rows as at ten. Pages fold what the ledger gained since the last read first
(refresh), bounded so a page never waits for a long backlog: `manage.py usage rollup` takes that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import DecimalField, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from usage.models import DailyUsage
from usage.rollup import LATENCY_BOUNDS_MS, catch_up

# Ledger ids a page read folds at most before answering.
FOLD_ON_READ = 200_000
# Series a breakdown chart draws; the rest are summed as "other".
TOP_SERIES = 8
TABLE_ROWS = 20

# Per dimension: the column that tells its values apart, then what labels them.
DIMENSIONS = {
    "model": ("model_public_id",),
    "user": ("user_id", "user__username"),
    "group": ("group_id", "group__name"),
    "key": ("api_key_id", "api_key__prefix", "api_key__name"),
}
METRICS = ("requests", "tokens", "cost", "errors")
_BUCKETS = range(len(LATENCY_BOUNDS_MS) + 1)
_TOTALS: dict[str, Any] = {
    "requests": Coalesce(Sum("requests"), 0),
    "errors": Coalesce(Sum("errors"), 0),
    "input_tokens": Coalesce(Sum("input_tokens"), 0),
    "output_tokens": Coalesce(Sum("output_tokens"), 0),
    "cost": Coalesce(Sum("cost"), Value(Decimal("0")), output_field=DecimalField(max_digits=24, decimal_places=8)),
}
_SUMS: dict[str, Any] = {
    **_TOTALS,
    "latency_ms_sum": Coalesce(Sum("latency_ms_sum"), 0),
    "latency_count": Coalesce(Sum("latency_count"), 0),
    **{f"b{i}": Coalesce(Sum(F(f"latency_buckets__{i}")), 0) for i in _BUCKETS},
}
_TOKENS = Coalesce(Sum(F("input_tokens") + F("output_tokens")), 0)


@dataclass(frozen=True)
class Scope:
    first: date
    last: date
    group_id: int | None = None

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def refresh() -> int:
    """Fold the ledger's newest rows, up to FOLD_ON_READ ids, before a page reads the rollup."""
    return catch_up(max_rows=FOLD_ON_READ)


def _rows(scope: Scope) -> QuerySet[DailyUsage]:
    rows = DailyUsage.objects.filter(day__gte=scope.first, day__lte=scope.last)
    return rows if scope.group_id is None else rows.filter(group_id=scope.group_id)


def p95(buckets: list[int]) -> float | None:
    """The 95th percentile latency (ms) estimated from the histogram, linear within its bucket."""
    total = sum(buckets)
    if total == 0:
        return None
    target = 0.95 * total
    seen = 0
    for i, count in enumerate(buckets):
        if count and seen + count >= target:
            if i == len(LATENCY_BOUNDS_MS):  # slower than every bound: at least the last one
                return float(LATENCY_BOUNDS_MS[-1])
            low = LATENCY_BOUNDS_MS[i - 1] if i else 0
            return low + (LATENCY_BOUNDS_MS[i] - low) * (target - seen) / count
        seen += count
    return float(LATENCY_BOUNDS_MS[-1])


def _measures(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of sums as the page shows it: tokens, cost, average and p95 latency (when the row has them)."""
    count = row.get("latency_count")
    estimate = p95([row[f"b{i}"] for i in _BUCKETS]) if "b0" in row else None
    return {
        "requests": row["requests"],
        "errors": row["errors"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "tokens": row["input_tokens"] + row["output_tokens"],
        "cost": row["cost"],
        "latency_avg_ms": round(row["latency_ms_sum"] / count) if count else None,
        "latency_p95_ms": round(estimate) if estimate is not None else None,
    }


def _label(dimension: str, row: Mapping[str, Any]) -> str:
    if dimension == "model":
        return str(row["model_public_id"])
    if dimension == "user":
        return str(row["user__username"])
    if dimension == "group":
        if row["group_id"] is None:
            return "(no group)"
        return str(row["group__name"] or f"(deleted group {row['group_id']})")
    if row["api_key_id"] is None:
        return "(browser or session)"
    if row["api_key__prefix"] is None:
        return f"(deleted key {row['api_key_id']})"
    return f"sk-{row['api_key__prefix']}… {row['api_key__name']}".strip()


def daily(scope: Scope) -> dict[str, list[Any]]:
    """Requests, errors, tokens, cost and latency (average, p95) per day; days without usage are zeros."""
    index = {day: i for i, day in enumerate(scope.days)}
    series: dict[str, list[Any]] = {name: [0] * len(index) for name in ("requests", "errors", "tokens")}
    series["cost"] = [0.0] * len(index)
    series["latency_avg_ms"] = [None] * len(index)
    series["latency_p95_ms"] = [None] * len(index)
    for row in _rows(scope).values("day").annotate(**_SUMS):
        i = index[row["day"]]
        measures = _measures(row)
        for name in series:
            series[name][i] = float(measures[name]) if name == "cost" else measures[name]
    return series


def _top(scope: Scope, column: str, limit: int) -> tuple[list[Any], int]:
    """The `limit` values of `column` with the most tokens in the range, and how many values there are."""
    values = _rows(scope).values(column).order_by()
    ranked = values.annotate(tokens=_TOKENS).order_by("-tokens", column).values_list(column, flat=True)
    return list(ranked[:limit]), values.distinct().count()


def _only(column: str, values: list[Any]) -> Q:
    known = [value for value in values if value is not None]
    only = Q(**{f"{column}__in": known})
    return only | Q(**{f"{column}__isnull": True}) if len(known) < len(values) else only


def breakdown(scope: Scope, dimension: str, daily_series: dict[str, list[Any]]) -> dict[str, Any]:
    """Per-day requests, tokens, cost and errors of the TOP_SERIES values of `dimension` with the most tokens;
    the rest, taken from the day's totals (`daily_series`), as "other"."""
    fields = DIMENSIONS[dimension]
    top, distinct = _top(scope, fields[0], TOP_SERIES)
    index = {day: i for i, day in enumerate(scope.days)}
    per_value: dict[Any, dict[str, Any]] = {}
    rows = _rows(scope).filter(_only(fields[0], top)).values("day", *fields).annotate(**_TOTALS)
    for row in rows:
        series = per_value.setdefault(
            row[fields[0]], {"label": _label(dimension, row), **{metric: [0] * len(index) for metric in METRICS}}
        )
        measures = _measures(row)
        for metric in METRICS:
            series[metric][index[row["day"]]] += float(measures[metric])
    shown = [per_value[value] for value in top if value in per_value]
    if distinct > len(shown):
        other = {metric: [float(total) for total in daily_series[metric]] for metric in METRICS}
        for series in shown:
            for metric in METRICS:
                other[metric] = [a - b for a, b in zip(other[metric], series[metric], strict=True)]
        shown.append({"label": f"other ({distinct - len(shown)})", **other})
    return {"series": shown}


def top_users(scope: Scope, limit: int = TABLE_ROWS) -> list[dict[str, Any]]:
    """The users with the most tokens in the range."""
    rows = _rows(scope).values("user__username").annotate(**_TOTALS)
    rows = rows.annotate(tokens=F("input_tokens") + F("output_tokens"))
    ranked = rows.order_by("-tokens", "user__username")[:limit]
    return [{"user": row["user__username"], **_measures(row)} for row in ranked]


def slowest_deployments(scope: Scope, limit: int = TABLE_ROWS) -> list[dict[str, Any]]:
    """Deployments by estimated p95 latency, slowest first, with their error rates."""
    rows = (
        _rows(scope)
        .filter(deployment_id__isnull=False)
        .values("deployment_id", "deployment__provider__name", "deployment__upstream_model", "model_public_id")
        .annotate(**_SUMS)
    )
    found = []
    for row in rows:
        measures = _measures(row)
        provider, upstream = row["deployment__provider__name"], row["deployment__upstream_model"]
        name = f"{provider}/{upstream}" if provider else f"(deleted deployment {row['deployment_id']})"
        errors = measures["errors"] / measures["requests"] if measures["requests"] else 0.0
        found.append({"deployment": name, "model": row["model_public_id"], "error_rate": errors, **measures})
    found.sort(key=lambda r: (-(r["latency_p95_ms"] or 0), -(r["latency_avg_ms"] or 0), r["deployment"]))
    return found[:limit]


def report(scope: Scope) -> dict[str, Any]:
    """Everything the analytics page draws, JSON-ready (its chart data)."""
    per_day = daily(scope)
    return {
        "labels": [day.isoformat() for day in scope.days],
        "daily": per_day,
        "by": {dimension: breakdown(scope, dimension, per_day) for dimension in DIMENSIONS},
    }


CSV_COLUMNS = (
    "day",
    "model",
    "user",
    "group",
    "key",
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_avg_ms",
    "latency_p95_ms",
)


def csv_rows(scope: Scope) -> Any:
    """One row per day, model, user, group and key in the range, oldest first (the CSV export)."""
    fields = ("day", *(name for names in DIMENSIONS.values() for name in names))
    order = ("day", "model_public_id", "user__username", "group__name", "api_key__prefix", *fields)
    rows = _rows(scope).values(*fields).annotate(**_SUMS).order_by(*order)
    for row in rows.iterator(chunk_size=2000):
        measures = _measures(row)
        yield (
            row["day"].isoformat(),
            *(_label(dimension, row) for dimension in DIMENSIONS),
            *(measures[name] for name in CSV_COLUMNS[5:9]),
            measures["cost"],
            measures["latency_avg_ms"] if measures["latency_avg_ms"] is not None else "",
            measures["latency_p95_ms"] if measures["latency_p95_ms"] is not None else "",
        )
