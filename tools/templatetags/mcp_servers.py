"""The profile page's "Tools" section (the profile lives in accounts, below tools: it includes this tag)."""

from __future__ import annotations

from typing import Any

from django import template

from tools import search, services, site
from tools.forms import OwnServerForm
from tools.models import McpServer
from tools.views import FORM_PREFIX

register = template.Library()


@register.inclusion_tag("tools/_profile_tools.html", takes_context=True)
def mcp_servers(context: template.Context, user: Any) -> dict[str, Any]:
    site.refresh_sync()
    return {
        "csrf_token": context.get("csrf_token"),
        "own": list(McpServer.objects.filter(owner=user).order_by("name", "pk")),
        "shared": list(services.servers_for(user).filter(owner__isnull=True).order_by("name", "pk")),
        "form": OwnServerForm(prefix=FORM_PREFIX),
        "searching": search.configured_engine() is not None,
    }
