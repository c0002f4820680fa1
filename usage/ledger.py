"""The usage ledger's writer: rows of usage.UsageRecord, written off the request path, in batches.

    current_ledger().add(row)                  # on the request path: an append, nothing more
    flight = current_ledger().begin(progress)  # a call in flight: a dict entry, nothing more
    current_ledger().land(flight, fields)      # its final row (an update if its in-flight row was written)
    await flush_usage()                        # tests; graceful shutdown

A per-event-loop writer task takes every row queued meanwhile and writes them in one multi-row
INSERT, one transaction, on a database thread (`_write_ledger`): under load, the rows of the
requests answered while one batch is written form the next batch. LEDGER_FLUSH_SECONDS (default 0:
write as soon as the writer is free) lets it wait that long to gather larger batches. Key
`last_used_at` rides along, at most once a minute per key.

Every LEDGER_PROGRESS_SECONDS while calls are in flight, the writer notes them: a call still in
flight then gets a row of its own in that batch (status 102, error_code "in_flight"), and the rows of
calls in flight are updated with what they sent so far (`progress()`, read on the event loop); the
call's end updates its row. A worker killed mid-stream leaves the last of these, which
`mark_interrupted` (run by every worker's writer now and then, and at start) turns into status 500,
error_code "interrupted" once no writer has updated it for a while. A crash loses at most the last
progress interval: what the calls in flight sent in it, the calls that began in it, and the rows
queued but not yet written.

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
import math
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Field, Value
from django.utils import timezone

from accounts.models import ApiKey
from core.clock import clock
from core.db import db
from usage.models import UsageRecord

log = logging.getLogger(__name__)

# A batch this large is written at once, whatever LEDGER_FLUSH_SECONDS says.
MAX_BATCH = 1000
# The status and error code of a call in flight (102 Processing), and of one whose worker died.
IN_FLIGHT, IN_FLIGHT_CODE = 102, "in_flight"
INTERRUPTED, INTERRUPTED_CODE = 500, "interrupted"
# What changes in a row while its call is in flight, and when it lands.
PROGRESS_FIELDS = [
    "deployment",
    "attempts",
    "prompt_tokens",
    "completion_tokens",
    "usage_estimated",
    "cost",
    "latency_ms",
    "ttft_ms",
    "status",
    "error_code",
]
# How often each writer looks for in-flight rows nobody updates any more.
SWEEP_SECONDS = 60.0


def progress_seconds() -> float:
    return float(settings.LEDGER_PROGRESS_SECONDS)


def stale_seconds() -> float:
    """How long an in-flight row may go without an update before its call counts as interrupted."""
    return max(30.0, 10 * progress_seconds(), 2 * float(settings.LEDGER_FLUSH_SECONDS))


@dataclass(eq=False)
class Flight:
    """A call in flight: `progress()` gives its row's fields as they stand (status 102)."""

    progress: Callable[[], dict[str, Any]]
    created_at: datetime = field(default_factory=timezone.now)
    pk: int | None = None  # once its in-flight row is written


@dataclass
class Batch:
    rows: list[UsageRecord] = field(default_factory=list)  # finished calls' rows
    flights: list[tuple[Flight, UsageRecord]] = field(default_factory=list)  # flights' rows, new
    updates: list[UsageRecord] = field(default_factory=list)  # flights' rows, written before
    landed: list[tuple[Flight, dict[str, Any]]] = field(default_factory=list)  # calls landed, to retry
    touched: set[int] = field(default_factory=set)
    sweep: bool = False

    def __bool__(self) -> bool:
        return bool(self.rows or self.flights or self.updates or self.touched or self.sweep)

    def inserts(self) -> list[UsageRecord]:
        return self.rows + [row for _, row in self.flights]


# Told how many rows wait to be written whenever that changes: /metrics, registered by operations.
backlog_watchers: list[Callable[[int], None]] = []


class _Ledger:
    """Writes usage rows off the request path, batching whatever accumulates meanwhile."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._rows: list[UsageRecord] = []
        self._landed: list[tuple[Flight, dict[str, Any]]] = []
        self._flights: dict[Flight, None] = {}
        self._touched: set[int] = set()
        self._noted = loop.time()
        self._swept = -math.inf
        self._writing = False
        self.failures = 0  # writes failed in a row
        self._task: asyncio.Task[None] | None = None
        self._now = asyncio.Event()  # write without waiting for a fuller batch (a flush, a full batch)
        self._wake = asyncio.Event()  # rows came while only calls in flight were waited on
        self._written = asyncio.Event()  # a batch was written

    def add(self, row: UsageRecord) -> None:
        self._rows.append(row)
        self._tell_backlog()
        if len(self._rows) >= MAX_BATCH:
            self._now.set()
        self._kick()

    def touch(self, key_id: int) -> None:
        self._touched.add(key_id)
        self._kick()

    def begin(self, progress: Callable[[], dict[str, Any]]) -> Flight:
        """Note a call in flight; its row is written only if it is still in flight at the next progress note."""
        flight = Flight(progress)
        if not self._flights:
            # The first call in flight after a quiet spell: its first note is an interval away, so the
            # calls shorter than that (most) never cost an in-flight row.
            self._noted = self._loop.time()
        self._flights[flight] = None
        if self._task is None or self._task.done():
            self._kick()
        return flight

    def land(self, flight: Flight, fields: dict[str, Any]) -> None:
        """The final row of a call begun with `begin`: its in-flight row updated, or a row of its own."""
        self._flights.pop(flight, None)
        self._landed.append((flight, fields))
        self._tell_backlog()
        self._kick()

    def _tell_backlog(self) -> None:
        for watch in backlog_watchers:
            watch(len(self._rows) + len(self._landed))

    def _pending_rows(self) -> bool:
        return bool(self._rows or self._touched or self._landed)

    def _kick(self) -> None:
        self._wake.set()
        if self._task is None or self._task.done():
            # A fresh context: the task must not inherit the request's (Django's per-request
            # thread context among others), since it outlives the request.
            self._task = self._loop.create_task(self._drain(), context=contextvars.Context())

    async def _drain(self) -> None:
        try:
            while self._pending_rows() or self._flights:
                self._wake.clear()
                if self._pending_rows():
                    linger = float(settings.LEDGER_FLUSH_SECONDS)
                    if linger > 0 and not self._now.is_set():
                        await _wait(self._now, linger)
                else:
                    # Only calls in flight: note their progress once an interval, sooner if rows come.
                    await _wait(self._wake, self._noted + progress_seconds() - self._loop.time())
                batch = self.take()
                self._now.clear()
                if not batch:
                    continue
                self._writing = True
                try:
                    await db(_write_ledger, batch)
                    self.failures = 0
                except Exception:
                    self.failures += 1
                    log.exception("could not write %d usage rows; retrying", len(batch.inserts()))
                finally:
                    self._writing = False
                    for flight, row in batch.flights:
                        flight.pk = row.pk
                self._written.set()
                if self.failures:
                    self._retry(batch)
                    # The database is away (a restart, say): retry less often the longer it stays away.
                    await _wait(self._now, min(2.0**self.failures / 4, 30.0))
        finally:
            self._now.clear()
            self._written.set()

    def _retry(self, batch: Batch) -> None:
        """Queue again what a failed write held; the flights' progress is noted afresh anyway."""
        self._rows[:0] = [row for row in batch.rows if row.pk is None]
        self._landed[:0] = batch.landed
        self._touched |= batch.touched
        self._swept = -math.inf if batch.sweep else self._swept
        self._tell_backlog()

    def take(self, final: bool = False) -> Batch:
        """What the next write holds; `final` (at exit): every call still in flight, as interrupted."""
        now = self._loop.time()
        batch = Batch(touched=self._touched)
        rows, self._rows = self._rows, []
        landed, self._landed = self._landed, []
        self._touched = set()
        batch.rows = rows
        batch.landed = landed
        if rows or landed:
            self._tell_backlog()
        for flight, fields in landed:
            self._place(batch, flight, fields)
        if final or now - self._noted >= progress_seconds():
            self._noted = now
            for flight in list(self._flights):
                fields = flight.progress()
                if final:
                    fields.update(status=INTERRUPTED, error_code=INTERRUPTED_CODE)
                self._place(batch, flight, fields)
        if not final and now - self._swept >= SWEEP_SECONDS:
            self._swept = now
            batch.sweep = True
        return batch

    @staticmethod
    def _place(batch: Batch, flight: Flight, fields: dict[str, Any]) -> None:
        """A flight's row into the batch: an update once written, else an insert."""
        if flight.pk is not None:
            batch.updates.append(UsageRecord(pk=flight.pk, **fields))
        else:
            # An in-flight row is dated when its call began; a landed call's row, like any other, when it ended.
            began = {"created_at": flight.created_at} if fields["status"] == IN_FLIGHT else {}
            batch.flights.append((flight, UsageRecord(**began, **fields)))

    async def flush(self) -> None:
        """Wait until the rows queued so far are written (calls in flight go on being noted)."""
        while self._task is not None and not self._task.done() and (self._pending_rows() or self._writing):
            self._now.set()
            self._wake.set()
            self._written.clear()
            written = asyncio.ensure_future(self._written.wait())
            try:
                await asyncio.wait({self._task, written}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                written.cancel()
            if self.failures:
                return  # the database is away: the writer goes on retrying, and the exit hook tries once more


async def _wait(event: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


def _write_ledger(batch: Batch) -> None:
    inserts = batch.inserts()
    if inserts:
        try:
            with transaction.atomic():
                UsageRecord.objects.bulk_create(inserts)
        except IntegrityError:
            # A user, key or model deleted meanwhile spoils the batch; keep every row we can.
            for row in inserts:
                try:
                    with transaction.atomic():
                        row.save(force_insert=True)
                except IntegrityError:
                    row.pk = None
                    log.warning("dropped a usage row of a deleted user, key or model")
    if batch.updates:
        _update_progress(batch.updates)
    if batch.touched:
        ApiKey.objects.filter(pk__in=batch.touched).update(last_used_at=timezone.now())
    if batch.sweep:
        mark_interrupted()


def _update_progress(rows: list[UsageRecord]) -> None:
    """The rows' PROGRESS_FIELDS in one UPDATE ... FROM (VALUES ...).

    Django's bulk_update builds a CASE of every row for every field: in the ledger's writes at 32
    concurrent requests it cost more CPU than inserting the rows (bench/side_by_side.py's profile).
    """
    meta = UsageRecord._meta
    pk = meta.pk
    assert pk is not None
    fields = [f for f in (meta.get_field(name) for name in PROGRESS_FIELDS) if isinstance(f, Field)]
    quote = connection.ops.quote_name
    # Each value cast to its column's type: a NULL alone in a VALUES column would have none.
    kinds = [str(f.db_type(connection)) for f in [pk, *fields]]
    row_sql = "(" + ", ".join(f"%s::{kind}" for kind in kinds) + ")"
    key, *columns = [quote(str(f.column)) for f in [pk, *fields]]
    names = ", ".join([key, *columns])
    sets = ", ".join(f"{column} = v.{column}" for column in columns)
    # Only the model's own names and placeholders go into the statement; every value is a parameter.
    sql = (
        f"UPDATE {quote(meta.db_table)} AS u SET {sets} FROM (VALUES {', '.join([row_sql] * len(rows))})"  # noqa: S608
        f" AS v({names}) WHERE u.{key} = v.{key}"
    )
    params: list[Any] = []
    for row in rows:
        params.append(row.pk)
        params.extend(f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def mark_interrupted(now: datetime | None = None) -> int:
    """Mark as interrupted the in-flight rows no writer updated for `stale_seconds()`: their worker died."""
    cutoff = (now or clock().now()) - timedelta(seconds=stale_seconds())
    # An in-flight row's latest update was `latency_ms` after its `created_at`.
    last_update_before = ExpressionWrapper(
        Value(cutoff) - F("latency_ms") * Value(timedelta(milliseconds=1)), output_field=DateTimeField()
    )
    return UsageRecord.objects.filter(status=IN_FLIGHT, created_at__lt=last_update_before).update(
        status=INTERRUPTED, error_code=INTERRUPTED_CODE
    )


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
    batches = [batch for ledger in list(_ledgers.values()) if (batch := ledger.take(final=True))]
    if not batches:
        return

    def write() -> None:
        from django.db import connection

        try:
            for batch in batches:
                try:
                    _write_ledger(batch)
                except Exception:
                    log.exception("could not write %d usage rows at exit", len(batch.inserts()))
        finally:
            connection.close()

    # A thread of its own: Django refuses ORM calls from a thread that ran an event loop.
    writer = threading.Thread(target=write, name="ledger-at-exit")
    writer.start()
    writer.join(timeout=30)
