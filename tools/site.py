"""The tools' settings in effect: the admin's (tools.models.ToolSettings) over the environment's.

Read at most every TTL seconds per process (core.clock), and at once in the process that saved a change.
`current()` never queries: it combines the row last read with the settings, so synchronous and async
code alike can ask it; `refresh()` (async) and `refresh_sync()` read the row again when it is stale.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from core.clock import clock
from tools.models import ToolSettings

TTL = 5.0


@dataclass(frozen=True)
class Effective:
    search_engine: str
    max_steps: int
    max_seconds: float
    calls_per_hour: int


_row: ToolSettings | None = None
_read_at: float | None = None


def current() -> Effective:
    row = _row
    return Effective(
        search_engine=(row.search_engine if row else "") or settings.TOOLS_SEARCH_ENGINE,
        max_steps=(row.max_steps if row else None) or settings.TOOLS_MAX_STEPS,
        max_seconds=float((row.max_seconds if row else None) or settings.TOOLS_MAX_SECONDS),
        calls_per_hour=(
            row.calls_per_hour if row is not None and row.calls_per_hour is not None else settings.TOOLS_CALLS_PER_HOUR
        ),
    )


def _stale() -> bool:
    return _read_at is None or clock().monotonic() - _read_at >= TTL


def _keep(row: ToolSettings | None) -> Effective:
    global _row, _read_at
    _row, _read_at = row, clock().monotonic()
    return current()


async def refresh() -> Effective:
    if not _stale():
        return current()
    return _keep(await ToolSettings.objects.filter(pk=1).afirst())


def refresh_sync() -> Effective:
    if not _stale():
        return current()
    return _keep(ToolSettings.objects.filter(pk=1).first())


def forget(**_: object) -> None:
    global _row, _read_at
    _row, _read_at = None, None


post_save.connect(forget, sender=ToolSettings, dispatch_uid="tools.site.forget.save")
post_delete.connect(forget, sender=ToolSettings, dispatch_uid="tools.site.forget.delete")
