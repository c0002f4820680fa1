"""{% shared_links user %}: the profile page's list of the user's share links, each with Revoke."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.models import User
from conversations import shares

register = template.Library()


@register.inclusion_tag("conversations/_shared_links.html")
def shared_links(user: User) -> dict[str, Any]:
    return {"shares": list(shares.shares_of(user).select_related("conversation")[: shares.MAX_SHARES])}
