"""The profile page's parts read from the ledger: `{% limits_summary user %}`, the user's limits and what
remains, and `{% usage_totals user %}`, their requests, tokens and cost with the chart of tokens per day."""

from __future__ import annotations

from typing import Any

from django import template

from usage import queries

register = template.Library()


@register.inclusion_tag("accounts/_limits.html")
def limits_summary(user: Any) -> dict[str, Any]:
    return {"limits": queries.limits_summary(user)}


@register.inclusion_tag("accounts/_usage.html")
def usage_totals(user: Any) -> dict[str, Any]:
    _, since = queries.chart_window()
    return {
        "usage_periods": [
            ("recent", f"Last {queries.CHART_DAYS} days", queries.usage_summary(user, since=since)),
            ("all", "All time", queries.usage_summary(user)),
        ],
        "chart_days": queries.CHART_DAYS,
    }
