"""`{% limits_summary user %}`: the user's limits and what remains, for the profile page."""

from __future__ import annotations

from typing import Any

from django import template

from usage import queries

register = template.Library()


@register.inclusion_tag("accounts/_limits.html")
def limits_summary(user: Any) -> dict[str, Any]:
    return {"limits": queries.limits_summary(user)}
