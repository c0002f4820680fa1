"""What the chat tells open sockets, and how: channel-layer groups and publishing after commit.

Groups: a conversation's (every socket showing it, on any worker), a generation's control group
("stop", "sync" for the one task writing a reply) and a user's (their sockets' sessions).

`publish(group, event)` is the one way a change is announced. It waits for the transaction: an
event is sent once the change is committed, never for one rolled back. It works from every caller:

- async code running ORM work through `run(fn, *args)` (core.db's threads): the events are
  kept until `fn` returns, then sent in order on the caller's event loop, the one its sockets and
  generations live on. The database thread never waits for that loop: with hundreds of replies
  streaming, a send waiting for a busy loop three times held its thread for as many loop turns,
  and every other action queued behind it;
- synchronous views under ASGI (Django runs them in a thread of the server's loop): asgiref's
  async_to_sync sends it on that loop;
- code with a running loop of its own: a task on it.

Each publication finishes before the action returns, so a socket sees an action's events in order.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.db import transaction

from core.db import db

log = logging.getLogger(__name__)

T = TypeVar("T")

_home = threading.local()  # .outbox: where a database thread's events wait, during run()
_tasks: set[asyncio.Future[Any]] = set()  # strong references: the loop keeps only weak ones


def conversation_group(conversation_id: int) -> str:
    return f"chat.conversation.{conversation_id}"


def control_group(message_id: int) -> str:
    return f"chat.generation.{message_id}"


def user_group(user_id: int) -> str:
    return f"chat.user.{user_id}"


def layer() -> BaseChannelLayer:
    channel_layer = get_channel_layer()
    if channel_layer is None:
        raise RuntimeError("CHANNEL_LAYERS is not configured")
    return channel_layer


def publish(group: str, event: dict[str, Any]) -> None:
    """Send `event` to `group` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _send(group, event))


async def publish_now(group: str, event: dict[str, Any]) -> None:
    """For async code with nothing to commit (a generation's frames)."""
    await layer().group_send(group, event)


async def run(fn: Callable[..., T], *args: Any) -> T:
    """`await db(fn, *args)`, then the events `fn` published sent in order on this event loop.

    Should the caller be cancelled meanwhile, the work and its events still complete.
    """
    task = asyncio.ensure_future(_run_then_send(fn, args))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return await asyncio.shield(task)


async def _run_then_send(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    outbox: list[tuple[str, dict[str, Any]]] = []
    try:
        return await db(_working_for, outbox, fn, *args)
    finally:
        # Also after a failure: what was committed before it is announced.
        for group, event in outbox:
            await _deliver(group, event)


def _working_for(outbox: list[tuple[str, dict[str, Any]]], fn: Callable[..., T], *args: Any) -> T:
    _home.outbox = outbox
    try:
        return fn(*args)
    finally:
        _home.outbox = None


async def _deliver(group: str, event: dict[str, Any]) -> None:
    try:
        await layer().group_send(group, event)
    except Exception:
        log.exception("could not publish %s to %s", event.get("type"), group)


def _send(group: str, event: dict[str, Any]) -> None:
    # The change is stored; a failed announcement must not undo the action that made it.
    outbox: list[tuple[str, dict[str, Any]]] | None = getattr(_home, "outbox", None)
    if outbox is not None:
        outbox.append((group, event))
        return
    try:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            task = running.create_task(_deliver(group, event))
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)
            return
        async_to_sync(layer().group_send)(group, event)
    except Exception:
        log.exception("could not publish %s to %s", event.get("type"), group)
