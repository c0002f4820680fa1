"""The usage ledger's writer: rows of usage.UsageRecord, written off the request path.

Rows are written after the answer, by a per-event-loop writer that batches the rows of
concurrent requests into one INSERT (see `_Ledger`); `flush_usage()` waits for it. Key
`last_used_at` rides along, at most once a minute per key.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiKey
from chatsite.db import db
from usage.models import UsageRecord

log = logging.getLogger(__name__)


class _Ledger:
    """Writes usage rows off the request path, batching whatever accumulates during one INSERT."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._rows: list[UsageRecord] = []
        self._touched: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, row: UsageRecord) -> None:
        self._rows.append(row)
        self._kick()

    def touch(self, key_id: int) -> None:
        self._touched.add(key_id)
        self._kick()

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            # A fresh context: the task must not inherit the request's (Django's per-request
            # thread context among others), since it outlives the request.
            self._task = self._loop.create_task(self._drain(), context=contextvars.Context())

    async def _drain(self) -> None:
        while self._rows or self._touched:
            rows, self._rows = self._rows, []
            touched, self._touched = self._touched, set()
            try:
                await db(_write_ledger, rows, touched)
            except Exception:
                log.exception("could not write %d usage rows", len(rows))

    async def flush(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)


def _write_ledger(rows: list[UsageRecord], touched: set[int]) -> None:
    if rows:
        try:
            with transaction.atomic():
                UsageRecord.objects.bulk_create(rows)
        except IntegrityError:
            # A user, key or model deleted meanwhile spoils the batch; keep every row we can.
            for row in rows:
                try:
                    with transaction.atomic():
                        row.save(force_insert=True)
                except IntegrityError:
                    log.warning("dropped a usage row of a deleted user, key or model")
    if touched:
        ApiKey.objects.filter(pk__in=touched).update(last_used_at=timezone.now())


_ledgers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Ledger] = weakref.WeakKeyDictionary()


def current_ledger() -> _Ledger:
    loop = asyncio.get_running_loop()
    ledger = _ledgers.get(loop)
    if ledger is None:
        ledger = _ledgers[loop] = _Ledger(loop)
    return ledger


async def flush_usage() -> None:
    """Wait until every usage row of this event loop is written (tests; graceful shutdown)."""
    ledger = _ledgers.get(asyncio.get_running_loop())
    if ledger is not None:
        await ledger.flush()
