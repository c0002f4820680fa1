"""The usage ledger's writer: rows of usage.UsageRecord, written off the request path, in batches.

    current_ledger().add(row)      # on the request path: an append, nothing more
    await flush_usage()            # tests; graceful shutdown

A per-event-loop writer task takes every row queued meanwhile and writes them in one multi-row
INSERT, one transaction, on a database thread (`_write_ledger`): under load, the rows of the
requests answered while one batch is written form the next batch. LEDGER_FLUSH_SECONDS (default 0:
write as soon as the writer is free) lets it wait that long to gather larger batches. Key
`last_used_at` rides along, at most once a minute per key.

Nothing is lost at shutdown: the ASGI lifespan's shutdown (uvicorn) awaits `flush_usage()`, and
at exit (daphne stops its loop on SIGTERM without a lifespan) whatever is still queued is written
synchronously.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import logging
import threading
import weakref

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiKey
from core.db import db
from usage.models import UsageRecord

log = logging.getLogger(__name__)

# A batch this large is written at once, whatever LEDGER_FLUSH_SECONDS says.
MAX_BATCH = 1000


class _Ledger:
    """Writes usage rows off the request path, batching whatever accumulates meanwhile."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._rows: list[UsageRecord] = []
        self._touched: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._now = asyncio.Event()  # write without waiting for a fuller batch (a flush, a full batch)

    def add(self, row: UsageRecord) -> None:
        self._rows.append(row)
        if len(self._rows) >= MAX_BATCH:
            self._now.set()
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
        try:
            while self._rows or self._touched:
                linger = float(settings.LEDGER_FLUSH_SECONDS)
                if linger > 0 and not self._now.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(linger):
                            await self._now.wait()
                rows, touched = self.take()
                try:
                    await db(_write_ledger, rows, touched)
                except Exception:
                    log.exception("could not write %d usage rows", len(rows))
        finally:
            self._now.clear()

    def take(self) -> tuple[list[UsageRecord], set[int]]:
        rows, self._rows = self._rows, []
        touched, self._touched = self._touched, set()
        return rows, touched

    async def flush(self) -> None:
        self._now.set()
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


@atexit.register
def _write_what_is_left() -> None:
    """Write, blocking, the rows still queued when the process exits (daphne on SIGTERM, say).

    By now the database threads finished the batch they were writing (the interpreter joins
    them before running exit hooks) and no event loop runs to write the rest.
    """
    leftovers = [ledger.take() for ledger in list(_ledgers.values())]
    rows = [row for batch, _ in leftovers for row in batch]
    touched = {key for _, keys in leftovers for key in keys}
    if not rows and not touched:
        return

    def write() -> None:
        from django.db import connection

        try:
            _write_ledger(rows, touched)
        except Exception:
            log.exception("could not write %d usage rows at exit", len(rows))
        finally:
            connection.close()

    # A thread of its own: Django refuses ORM calls from a thread that ran an event loop.
    writer = threading.Thread(target=write, name="ledger-at-exit")
    writer.start()
    writer.join(timeout=30)
