"""Usage read back from the ledger: totals, charts, top users, keys' usage and the limits left.

These read only the ledger (usage.UsageRecord), so the profile, its chart and the admin overview
always agree with what the gateway charged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, F, IntegerField, Max, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from accounts.models import ApiKey, User
from usage.limits import key_scope, limits_for_sync, period_bounds, remaining_sync, spent_since
from usage.models import Limit, UsageRecord

CHART_DAYS = 30

_TOKENS = F("prompt_tokens") + F("completion_tokens")


def with_usage(keys: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
    """Each key annotated with `requests` and `tokens` from the ledger (accounts.services.own_keys)."""
    return keys.annotate(
        requests=Count("usagerecord"),
        tokens=Coalesce(
            Sum(F("usagerecord__prompt_tokens") + F("usagerecord__completion_tokens")),
            Value(0),
            output_field=IntegerField(),
        ),
    )


@dataclass
class UsageTotals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal("0")

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: UsageTotals) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost += other.cost

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost": str(self.cost),
        }


@dataclass
class UsageSummary:
    """Totals split by where the calls came from: the /v1 API and the browser chat."""

    api: UsageTotals = field(default_factory=UsageTotals)
    chat: UsageTotals = field(default_factory=UsageTotals)

    @property
    def total(self) -> UsageTotals:
        total = UsageTotals()
        total.add(self.api)
        total.add(self.chat)
        return total

    def as_dict(self) -> dict[str, Any]:
        return {"api": self.api.as_dict(), "chat": self.chat.as_dict(), "total": self.total.as_dict()}


def usage_summary(user: User | None, since: datetime | None = None) -> UsageSummary:
    """Requests, tokens and cost by source; `user=None` sums everyone's (the admin overview)."""
    records = UsageRecord.objects.all() if user is None else UsageRecord.objects.filter(user=user)
    if since is not None:
        records = records.filter(created_at__gte=since)
    rows = records.values("source").annotate(
        requests=Count("id"),
        prompt=Coalesce(Sum("prompt_tokens"), 0),
        completion=Coalesce(Sum("completion_tokens"), 0),
        spent=Coalesce(Sum("cost"), Value(Decimal("0")), output_field=DecimalField(max_digits=20, decimal_places=8)),
    )
    summary = UsageSummary()
    for row in rows:
        target = summary.chat if row["source"] == UsageRecord.Source.CHAT else summary.api
        target.add(UsageTotals(row["requests"], row["prompt"], row["completion"], row["spent"]))
    return summary


def chart_window(days: int = CHART_DAYS, now: datetime | None = None) -> tuple[list[date], datetime]:
    """The last `days` calendar days (today included) and the instant the first one starts."""
    today = timezone.localdate(now or timezone.now())
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    return [first + timedelta(days=i) for i in range(days)], start


def daily_tokens_by_model(
    user: User | None = None, days: int = CHART_DAYS, now: datetime | None = None, *, group_id: int | None = None
) -> dict[str, Any]:
    """Tokens per day and model over the last `days` days, for a stacked chart.

    `user=None` covers everyone (the admin overview); `group_id`, the requests billed to that group.
    Days without usage are zeros, so every series has one value per label.
    """
    labels, start = chart_window(days, now)
    records = UsageRecord.objects.filter(created_at__gte=start)
    if user is not None:
        records = records.filter(user=user)
    if group_id is not None:
        records = records.filter(group_id=group_id)
    rows = (
        records.annotate(day=TruncDate("created_at"))
        .values("day", "model_public_id", "source")
        .annotate(
            tokens=Coalesce(Sum(_TOKENS), 0),
            requests=Count("id"),
            spent=Coalesce(
                Sum("cost"), Value(Decimal("0")), output_field=DecimalField(max_digits=20, decimal_places=8)
            ),
        )
    )
    index = {day: i for i, day in enumerate(labels)}
    by_model: dict[str, list[int]] = {}
    by_source: dict[str, list[int]] = {source.value: [0] * days for source in UsageRecord.Source}
    requests = [0] * days
    cost = [Decimal("0")] * days
    for row in rows:
        i = index.get(row["day"])
        if i is None:  # a record stamped in the future (clock skew) has no bar to go in
            continue
        by_model.setdefault(row["model_public_id"], [0] * days)[i] += row["tokens"]
        by_source.setdefault(row["source"], [0] * days)[i] += row["tokens"]
        requests[i] += row["requests"]
        cost[i] += row["spent"]
    return {
        "days": days,
        "labels": [day.isoformat() for day in labels],
        "models": [{"model": model, "tokens": by_model[model]} for model in sorted(by_model)],
        "sources": [{"source": source, "tokens": tokens} for source, tokens in by_source.items()],
        "requests": requests,
        "cost": [str(value) for value in cost],
    }


def top_users(days: int = CHART_DAYS, limit: int = 10, now: datetime | None = None) -> list[dict[str, Any]]:
    """The heaviest users over the last `days` days, by tokens."""
    _, start = chart_window(days, now)
    rows = (
        User.objects.filter(usage__created_at__gte=start)
        .annotate(
            requests=Count("usage"),
            tokens=Coalesce(Sum(F("usage__prompt_tokens") + F("usage__completion_tokens")), 0),
            spent=Coalesce(
                Sum("usage__cost"), Value(Decimal("0")), output_field=DecimalField(max_digits=20, decimal_places=8)
            ),
            api_requests=Count("usage", filter=Q(usage__source=UsageRecord.Source.API)),
            chat_requests=Count("usage", filter=Q(usage__source=UsageRecord.Source.CHAT)),
            last_used=Max("usage__created_at"),
        )
        .order_by("-tokens", "username")[:limit]
    )
    return [
        {
            "user": user,
            "requests": user.requests,
            "api_requests": user.api_requests,
            "chat_requests": user.chat_requests,
            "tokens": user.tokens,
            "cost": user.spent,
            "last_used": user.last_used,
        }
        for user in rows
    ]


def limits_summary(user: Any) -> dict[str, Any]:
    """The user's limits and what remains now, for the profile page."""
    limits = limits_for_sync(user.pk, None)
    scope = limits.user
    summary: dict[str, Any] = {
        "limited": not scope.empty,
        "requests_per_minute": scope.rpm,
        "tokens_per_minute": scope.tpm,
        "requests_remaining": None,
        "tokens_remaining": None,
        "budget_usd": scope.budget_usd,
        "budget_period": scope.period,
        "spent_usd": None,
        "budget_remaining_usd": None,
        "budget_resets_at": None,
        "keys": [],
    }
    for what, remaining in remaining_sync(limits).items():
        summary[f"{what}_remaining"] = remaining
    if scope.budget_usd is not None:
        start, end = period_bounds(scope.period)
        spent = spent_since("user", user.pk, start)
        summary["spent_usd"] = spent
        summary["budget_remaining_usd"] = max(Decimal(0), scope.budget_usd - spent)
        summary["budget_resets_at"] = end
    for row in Limit.objects.filter(api_key__user=user, api_key__revoked_at__isnull=True).select_related("api_key"):
        own = key_scope(row)
        summary["keys"].append(
            {
                "key": row.api_key.display if row.api_key else "",
                "name": row.api_key.name if row.api_key else "",
                "requests_per_minute": own.rpm,
                "tokens_per_minute": own.tpm,
                "budget_usd": own.budget_usd,
                "budget_period": own.period,
            }
        )
    return summary


_COST = Coalesce(Sum("cost"), Value(Decimal("0")), output_field=DecimalField(max_digits=20, decimal_places=8))


def group_by_user(group_id: int, days: int = CHART_DAYS, now: datetime | None = None) -> list[dict[str, Any]]:
    """Who spent the group's money over the last `days` days: requests, errors, tokens, cost by user, most first."""
    _, start = chart_window(days, now)
    rows = (
        UsageRecord.objects.filter(group_id=group_id, created_at__gte=start)
        .values(username=F("user__username"))
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=Q(status__gte=400)),
            tokens=Coalesce(Sum(_TOKENS), 0),
            spent=_COST,
        )
        .order_by("-tokens", "user__username")
    )
    return [dict(row) for row in rows]


def group_budget(group_id: int) -> dict[str, Any] | None:
    """The group's shared budget this period and what was spent of it; None when it has none."""
    row = Limit.objects.filter(group_id=group_id).first()
    scope = key_scope(row) if row is not None else None
    if scope is None or scope.budget_usd is None:
        return None
    start, end = period_bounds(scope.period)
    spent = spent_since("group", group_id, start)
    return {"budget_usd": scope.budget_usd, "period": scope.period, "spent_usd": spent, "resets_at": end}


CSV_COLUMNS = ("day", "user", "key", "model", "requests", "errors", "prompt_tokens", "completion_tokens", "cost_usd")


def group_daily_rows(group_id: int, days: int = CHART_DAYS, now: datetime | None = None) -> QuerySet[Any]:
    """The group's usage per day, user, key and model over the last `days` days (the CSV export), oldest first."""
    _, start = chart_window(days, now)
    return (
        UsageRecord.objects.filter(group_id=group_id, created_at__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values_list("day", "user__username", "api_key__prefix", "model_public_id")
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=Q(status__gte=400)),
            prompt=Coalesce(Sum("prompt_tokens"), 0),
            completion=Coalesce(Sum("completion_tokens"), 0),
            spent=_COST,
        )
        .order_by("day", "user__username", "api_key__prefix", "model_public_id")
    )
