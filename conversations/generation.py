"""Replies generated in background tasks that belong to no socket.

A generation is keyed by its assistant message. It publishes text in frames (at most one every
FRAME_SECONDS) to the conversation's channel-layer group, which every open socket of that
conversation subscribes to, whichever worker process holds it. It listens on its own control group,
so "stop" and "sync" (send me everything so far) reach it from any socket on any worker. Its partial
text and heartbeat go to PostgreSQL (conversations.progress, for all replies at once), so a reload
shows them and a dead worker's reply is recognisable as interrupted (services.expire_stale).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from conversations import knowledge, progress, rejoin, services, tool_calls
from conversations.events import control_group, conversation_group, layer, publish_now
from conversations.models import Message
from conversations.serializers import message_data
from core.db import db
from gateway.chat_completions.inprocess import Failed, Finished, Said, reply
from gateway.errors import GatewayError
from operations import observe
from tools.loop import ToolFinished, ToolStarted

log = logging.getLogger(__name__)
T = TypeVar("T")

FRAME_SECONDS = 0.05

# Strong references: the event loop keeps only weak ones to tasks.
_running: dict[int, asyncio.Task[None]] = {}
_generations: dict[int, Generation] = {}
STOPPED_BY_SERVER = services.STOPPED_BY_SERVER


def utf16_len(text: str) -> int:
    """Offsets on the wire count UTF-16 code units, as JavaScript strings do."""
    return len(text.encode("utf-16-le")) // 2


def start(conversation_id: int, message_id: int) -> None:
    """Starts generating the streaming reply `message_id` in this process's event loop."""
    if message_id in _running:
        return
    generation = Generation(conversation_id, message_id)
    task = asyncio.get_running_loop().create_task(generation.run())
    _running[message_id] = task
    _generations[message_id] = generation

    # Forgotten by _finish once the outcome is saved: a task cancelled at shutdown is done before
    # its shielded _finish has run, and the exit hook below must still see it.
    task.add_done_callback(lambda _t: _running.pop(message_id, None))


def writing_in(conversation_id: int) -> bool:
    """Whether this process is writing a reply of the conversation."""
    return any(g.conversation_id == conversation_id for g in _generations.values())


@atexit.register
def _interrupt_unfinished() -> None:
    """Keep what replies still being written at exit have, marked interrupted, at once.

    Servers stop their event loop on SIGTERM without cancelling our tasks, so `run` never gets to
    say so; without this the reply would show as interrupted only once its heartbeat went stale.
    """
    for message_id, generation in list(_generations.items()):
        _keep_interrupted_now(message_id, generation.content, generation.reasoning, generation.calls_to_keep())


def _keep_interrupted_now(
    message_id: int, content: str, reasoning: str = "", calls: list[dict[str, Any]] | None = None
) -> None:
    """Save a reply as interrupted, blocking: only for shutdown, when the loop may not run again."""

    def save() -> None:
        tool_calls.cancel_running(calls or ())
        try:
            services.finish(
                message_id, content, Message.Status.INTERRUPTED, STOPPED_BY_SERVER, reasoning=reasoning, calls=calls
            )
            _generations.pop(message_id, None)
        except Exception:
            log.exception("could not keep chat reply %s at shutdown", message_id)

    # A thread of its own: Django refuses ORM calls from a thread running an event loop.
    saver = threading.Thread(target=save, name=f"keep-reply-{message_id}")
    saver.start()
    saver.join(timeout=10)


async def interrupt_all(grace_seconds: float = 5.0) -> None:
    """At shutdown: stop every reply this process writes, keeping each as interrupted."""
    tasks = list(_running.values())
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=grace_seconds)


async def request_sync(message_id: int, reply_channel: str) -> None:
    """Asks the generation writing `message_id` (on any worker) to send its text so far to `reply_channel`."""
    await publish_now(control_group(message_id), {"type": "generation.sync", "reply": reply_channel})


class Generation:
    def __init__(self, conversation_id: int, message_id: int) -> None:
        self.conversation_id = conversation_id
        self.message_id = message_id
        self.group = conversation_group(conversation_id)
        self.content = ""
        self.published = 0  # UTF-16 units of content already sent to the group
        self.pending = ""
        # The model's thinking streams apart from the answer, with offsets of its own.
        self.reasoning = ""
        self.reasoning_published = 0
        self.reasoning_pending = ""
        self.usage: dict[str, Any] | None = None
        self.error = ""
        self.stopped = False
        # The tools the model called, as stored and shown (conversations.tool_calls).
        self.tool_calls: list[dict[str, Any]] = []
        self.control = ""
        # One flush at a time: a frame's offset is what went out before it, known once that was sent.
        self.flushing = asyncio.Lock()

    REJOIN_ORDER = 0

    async def rejoin(self) -> None:
        await layer().group_add(control_group(self.message_id), self.control)

    async def run(self) -> None:
        watch = observe.reply(self.message_id)  # before the tasks below, which inherit its span
        channel_layer = layer()
        control = self.control = await channel_layer.new_channel()
        await channel_layer.group_add(control_group(self.message_id), control)
        rejoin.register(self)
        consume = asyncio.create_task(self._consume())
        listener = asyncio.create_task(self._listen(control, consume))
        ticker = asyncio.create_task(self._tick())
        progress.track(self)
        status = Message.Status.COMPLETE
        try:
            # wait() rather than await: a stop cancels `consume`, which must not look like our own cancellation.
            await asyncio.wait({consume})
            if self.stopped:
                status = Message.Status.INTERRUPTED
            elif self.error:
                status = Message.Status.ERROR
        except asyncio.CancelledError:
            # The process is shutting down: keep what we have, marked interrupted.
            consume.cancel()
            status = Message.Status.INTERRUPTED
            self.error = STOPPED_BY_SERVER
            # asyncio.run cancels leftover tasks as its last act, so an awaited save may never run.
            _keep_interrupted_now(self.message_id, self.content, self.reasoning, self.calls_to_keep())
            raise
        finally:
            listener.cancel()
            ticker.cancel()
            progress.untrack(self)
            rejoin.unregister(self)
            observe.ended(watch)
            await asyncio.shield(self._finish(status, control))

    async def _consume(self) -> None:
        try:
            try:
                turn = await db(services.generation_input, self.message_id)
            except knowledge.StillIngesting:
                # A file of the question too long for the context is searched once the worker has ingested it.
                await knowledge.wait_for_ingestion(self.conversation_id)
                turn = await db(partial(services.generation_input, self.message_id, files_pending=True))
            if turn is None:
                self.stopped = True
                return
            # Closing the iterator (also on a stop's cancellation) closes the upstream request.
            async with contextlib.aclosing(reply(turn)) as events:
                async for event in events:
                    if isinstance(event, Said):
                        self.reasoning += event.reasoning
                        self.reasoning_pending += event.reasoning
                        self.content += event.text
                        self.pending += event.text
                    elif isinstance(event, Finished):
                        self.usage = event.usage.as_dict()
                    elif isinstance(event, ToolStarted):
                        await self.tool_started(
                            event.call_id,
                            event.name,
                            event.arguments,
                            step=event.step,
                            tool=event.tool,
                            server=event.server,
                        )
                    elif isinstance(event, ToolFinished):
                        if event.kind == "file_search":
                            await db(knowledge.add_found, self.message_id, event.result.sources)
                        await self.tool_finished(
                            event.call_id,
                            result=event.result.text,
                            failed=event.state == tool_calls.FAILED,
                            duration_ms=event.duration_ms,
                            sources=event.result.sources,
                        )
                    elif isinstance(event, Failed):
                        self.error = event.message
        except GatewayError as exc:
            self.error = exc.message or "The model's provider failed."
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("chat generation %s failed", self.message_id)
            self.error = "The reply failed because of an internal error."

    async def _listen(self, control: str, consume: asyncio.Task[None]) -> None:
        while True:
            try:
                await self._obey(control, consume)
            except Exception:
                # Redis restarting: listen again once it is back (conversations.rejoin rejoins the group).
                log.warning("chat reply %s: its control channel failed; listening again", self.message_id)
                await asyncio.sleep(1.0)

    async def _obey(self, control: str, consume: asyncio.Task[None]) -> None:
        channel_layer = layer()
        while True:
            event = await channel_layer.receive(control)
            if event.get("type") == "generation.stop" and not consume.done():
                self.stopped = True
                consume.cancel()
            elif event.get("type") == "generation.sync" and event.get("reply"):
                await self._flush()
                await channel_layer.send(
                    event["reply"],
                    {
                        "type": "chat.snapshot",
                        "id": self.message_id,
                        "content": self.content,
                        "reasoning": self.reasoning,
                        "tool_calls": self.tool_calls,
                    },
                )

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(FRAME_SECONDS)
            try:
                await self._flush()
            except Exception:
                # Redis restarting: what was not sent stays pending, for the next tick.
                log.warning("chat reply %s: could not send its text; trying again", self.message_id)

    async def _flush(self) -> None:
        async with self.flushing:
            if self.reasoning_pending:
                thought, self.reasoning_pending = self.reasoning_pending, ""
                frame = {"type": "chat.reasoning", "id": self.message_id, "offset": self.reasoning_published}
                try:
                    await publish_now(self.group, {**frame, "text": thought})
                except BaseException:
                    self.reasoning_pending = thought + self.reasoning_pending
                    raise
                self.reasoning_published += utf16_len(thought)
            if self.pending:
                text, self.pending = self.pending, ""
                frame = {"type": "chat.delta", "id": self.message_id, "offset": self.published}
                try:
                    await publish_now(self.group, {**frame, "text": text})
                except BaseException:
                    self.pending = text + self.pending
                    raise
                self.published += utf16_len(text)

    # --- tool calls ---------------------------------------------------------------------------------

    async def tool_started(
        self, call_id: str, name: str, arguments: Any, *, step: int = 1, tool: str = "", server: str = ""
    ) -> None:
        """The model called one of our tools: shown at once as running, and stored with the reply."""
        call = tool_calls.started(call_id, name, arguments, step=step, tool=tool, server=server)
        self.tool_calls.append(call)
        await self._tool_changed(call)

    async def tool_finished(
        self, call_id: str, *, result: str, failed: bool, duration_ms: int, sources: Any = ()
    ) -> None:
        call = tool_calls.find(self.tool_calls, call_id)
        if call is not None:
            tool_calls.finished(call, result=result, failed=failed, duration_ms=duration_ms, sources=sources)
            await self._tool_changed(call)

    async def _tool_changed(self, call: dict[str, Any]) -> None:
        await db(services.save_tool_calls, self.message_id, self.calls_to_keep())
        try:
            await self._flush()  # what the model said before the call shows before it
            await publish_now(self.group, {"type": "chat.tool", "id": self.message_id, "call": dict(call)})
        except Exception:
            # Redis restarting: the call is stored, and a socket's sync (its snapshot) carries it.
            log.warning("chat reply %s: could not announce a tool call", self.message_id)

    def calls_to_keep(self) -> list[dict[str, Any]] | None:
        """A copy of the calls to store (a database thread must not read the list this loop changes)."""
        return json.loads(json.dumps(self.tool_calls)) if self.tool_calls else None

    async def _finish(self, status: str, control: str) -> None:
        try:
            await _persistently("sending its last text", self._flush)
            tool_calls.cancel_running(self.tool_calls)
            # A reply the person stopped is interrupted with no error: a stop is no failure.
            fields = (self.message_id, self.content, status, self.error, self.usage, self.reasoning)
            message = await _persistently("its last save", db, services.finish, *fields, self.calls_to_keep())
            _generations.pop(self.message_id, None)
            if message is not None:
                frame = {"type": "chat.message", "message": message_data(message)}
                await _persistently("sending its end", publish_now, self.group, frame)
        except Exception:
            log.exception("could not save chat reply %s", self.message_id)
        finally:
            with contextlib.suppress(Exception):
                await layer().group_discard(control_group(self.message_id), control)


# Waits between tries of a reply's last save and frames: PostgreSQL or Redis restarting take seconds.
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0)


async def _persistently(what: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """`await fn(*args)`, tried again while a restarting store makes it fail (about 30 s in all)."""
    for delay in RETRY_DELAYS:
        try:
            return await fn(*args)
        except Exception as exc:
            log.warning("a chat reply: %s failed (%s); trying again", what, type(exc).__name__)
            await asyncio.sleep(delay)
    return await fn(*args)
