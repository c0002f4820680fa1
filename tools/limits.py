"""Per-user tool limits: how many tool calls a user may make in an hour (TOOLS_CALLS_PER_HOUR, 0: no limit).

Counted from the record of tool calls (tools.models.ToolCall), over the last hour of `core.clock`. A
refused call is a tool error the model reads, recorded as refused (and not counted).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.clock import clock
from tools import site
from tools.models import ToolCall


async def refusal(user: Any) -> str | None:
    """Why `user` may make no tool call now, or None when they may."""
    limit = (await site.refresh()).calls_per_hour
    if not limit:
        return None
    since = clock().now() - timedelta(hours=1)
    made = (
        await ToolCall.objects.filter(user=user, created_at__gte=since).exclude(status=ToolCall.Status.REFUSED).acount()
    )
    if made >= limit:
        return f"the tool limit is reached: {limit} tool calls an hour; try again later"
    return None
