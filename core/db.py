"""The one way async code here runs database work: `await db(fn, *args)` on the process's database threads.

Database work runs on a small process-wide pool (not one thread per request, not Django's single
thread-sensitive thread) so requests don't queue behind one another's queries. The /v1 hot path,
the usage ledger, limits, and the chat's socket and generations all use it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, connection

T = TypeVar("T")


def _reconnecting(fn: Callable[..., T]) -> Callable[..., T]:
    def run(*args: Any) -> T:
        # Each database thread keeps its connection between calls (checking one out of the pool
        # and back costs more than the queries here); one that broke meanwhile (a database
        # restart, an idle timeout) is dropped and the call made once more on a fresh one.
        try:
            return fn(*args)
        except (OperationalError, InterfaceError):
            connection.close()
            return fn(*args)

    return run


DB_THREADS = 8
_executor = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="db")


async def db(fn: Callable[..., T], *args: Any) -> T:
    """Run ORM work on the process's database threads.

    What sync_to_async(thread_sensitive=False) does, minus its per-call wrapping and context
    copying (a tenth of the gateway's CPU at 32 concurrent requests, measured). The threads
    belong to the process, not to an event loop, so their connections outlive loops.
    """
    return await asyncio.get_running_loop().run_in_executor(_executor, _reconnecting(fn), *args)


def close_db_connections() -> None:
    """Close the database threads' connections (tests, before the test database is dropped; shutdown)."""
    if not _executor._threads:
        return
    barrier = threading.Barrier(DB_THREADS, timeout=10)

    def close() -> None:
        connection.close()
        barrier.wait()  # holds each thread until every one of them has run this once

    for future in [_executor.submit(close) for _ in range(DB_THREADS)]:
        future.result()
