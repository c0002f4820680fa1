"""Relaying an upstream's server-sent events to a client, for the serving core (gateway.serving.base).

    async for chunk in relay_stream(call, prepare, attempt, keepalive=...): ...

Both functions are passed down by the endpoint's serving (gateway.serving.base): `prepare()` readies
the call (parse, check, reserve), on the first `anext`; `attempt(deployment, target)` gives for one
deployment the Relay reading its events and the request (path, body, extra headers) to send. The
stream is opened on the first deployment whose stream starts well (gateway.routing); once something
went to the client, failures are yielded as the relay says (chat: one {"error": {...}} dict) and the
stream ends. `Call.finish` writes the ledger row, always.

Hot-path design (the benchmark asks for a few milliseconds of overhead at most): the upstream is
read by a pump task feeding a small queue (`paced`), so a silent upstream can be answered with
keep-alive comments without cancelling the read, and closing the generator (client gone, aclose,
task cancelled) cancels the pump and closes the upstream request at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from catalogue.models import Deployment
from gateway import routing, upstream
from gateway.errors import CLIENT_CLOSED, GatewayError, error_code_of
from usage.tokens import Usage

if TYPE_CHECKING:
    from gateway.serving.base import Call

log = logging.getLogger(__name__)


def finish_reasons_of(answer: Any) -> tuple[str, ...]:
    """Why an answer's choices (or a stream's last chunk's) ended: "stop", "length", "tool_calls", ..."""
    choices = answer.get("choices") if isinstance(answer, dict) else None
    reasons = (c.get("finish_reason") for c in choices or () if isinstance(c, dict))
    return tuple(r for r in reasons if isinstance(r, str))


class Relay(Protocol):
    """Turns one upstream's stream events into the client's chunks, and keeps what they said."""

    target: upstream.Target

    def chunks(self, data: str) -> list[Any]:
        """One upstream event as the client's chunks (none, one or a few)."""
        ...

    def end(self) -> None:
        """At the end of the upstream's stream: GatewayError when it was cut short."""
        ...

    def usage(self, call: Call) -> Usage: ...

    def tail(self, usage: Usage) -> list[Any]:
        """The chunks closing a stream that ended well (chat's usage chunk, when asked for)."""
        ...

    def failed(self, exc: GatewayError) -> list[Any]:
        """The chunks telling the client the stream failed after it began."""
        ...


# One deployment's attempt: the relay for its events, and the upstream path, body and extra headers.
Attempt = Callable[[Deployment, upstream.Target], tuple[Relay, str, bytes, dict[str, str]]]

_END = object()


async def _pump(events: AsyncIterator[Any], queue: asyncio.Queue[Any]) -> None:
    try:
        async for event in events:
            await queue.put(event)
        await queue.put(_END)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # never let the consumer wait forever: it raises it
        await queue.put(exc)


async def stop_task(task: asyncio.Task[None]) -> None:
    if not task.done():
        task.cancel()
    # asyncio.wait never raises the task's own outcome, so a cancellation of *this* task (the
    # consumer going away) still propagates instead of being mistaken for the pump's.
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" noise


async def with_keepalives(events: AsyncGenerator[Any, None], keepalive: float | None) -> AsyncGenerator[Any, None]:
    """`events`, and None whenever none came for `keepalive` s (an upstream thinking, a long tool step).

    Read by a pump task, so waiting for a keep-alive never cancels a read; closing this generator
    stops the pump, and with it what `events` was waiting on, then closes `events`.
    """
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=16)
    pump = asyncio.ensure_future(_pump(events, queue))
    try:
        while True:
            if keepalive is not None and queue.empty():
                try:
                    async with asyncio.timeout(keepalive):
                        item = await queue.get()
                except TimeoutError:
                    yield None
                    continue
            else:
                item = await queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        await stop_task(pump)
        await events.aclose()


async def _blocks(events: upstream.EventStream, target: upstream.Target) -> AsyncGenerator[list[str], None]:
    """The upstream's non-empty blocks of event payloads; any failure reading them a GatewayError."""
    try:
        async for payloads in events.blocks():
            if payloads:
                yield payloads
    except GatewayError:
        raise
    except Exception:
        log.exception("reading the upstream stream failed")
        raise upstream.bad_response(target) from None


def paced(
    events: upstream.EventStream, target: upstream.Target, keepalive: float | None
) -> AsyncGenerator[list[str] | None, None]:
    """The upstream's event payloads, block by block, and None whenever it was silent for `keepalive` s
    (with_keepalives); closing it stops reading before the upstream response is closed."""
    return with_keepalives(_blocks(events, target), keepalive)


async def head(blocks: AsyncIterator[list[str] | None], relay: Relay) -> tuple[list[Any], GatewayError | None]:
    """What a stream says first: the chunks of its first block that has any, or [None] for a keep-alive.

    Until this returns nothing has gone to the client, so its failures (an error event, an empty or
    unreadable stream, a read timeout) may be tried on another deployment. A failure later in the
    same block as good chunks comes back beside them, to be raised once they went out.
    """
    async for block in blocks:
        if block is None:
            return [None], None
        chunks: list[Any] = []
        for data in block:
            try:
                chunks.extend(relay.chunks(data))
            except GatewayError as exc:
                if not chunks:
                    raise
                return chunks, exc
        if chunks:
            return chunks, None
    raise upstream.bad_response(relay.target, "an empty stream")


async def open_first(
    call: Call, attempt: Attempt, keepalive: float | None, fall_back: routing.FallBack | None = None
) -> tuple[
    contextlib.AsyncExitStack,
    AsyncIterator[list[str] | None],
    tuple[list[Any], GatewayError | None],
    Relay,
]:
    """Open the stream on the first deployment whose stream starts well (gateway.routing), a fallback's
    once the model has none left."""
    attempts = call.attempts
    assert attempts is not None
    while True:
        attempts, deployment = await routing.next_of(attempts, fall_back)
        target = attempts.target
        stack = contextlib.AsyncExitStack()
        try:
            relay, path, body, extra = attempt(deployment, target)
            events = await stack.enter_async_context(upstream.open_stream(target, path, body, extra))
            blocks = await stack.enter_async_context(contextlib.aclosing(paced(events, target, keepalive)))
            first = await head(blocks, relay)
        except GatewayError as exc:
            await stack.aclose()
            await attempts.failed(exc)
            continue
        except BaseException:
            await stack.aclose()
            raise
        if first[0] != [None]:
            await attempts.succeeded()
        return stack, blocks, first, relay


async def relay_stream(
    call: Call,
    prepare: Callable[[], Awaitable[None]],
    attempt: Attempt,
    keepalive: float | None,
    fall_back: routing.FallBack | None = None,
) -> AsyncGenerator[Any, None]:
    """The client's chunks (None for a keep-alive), once `prepare()` set the call's `attempts`."""
    await prepare()  # settles the call itself when it fails
    assert call.attempts is not None
    relay: Relay | None = None
    status, error_code = CLIENT_CLOSED, "client_disconnected"
    committed = False  # something went out (a keep-alive too): failures are yielded, no longer raised
    try:
        stack, blocks, first, relay = await open_first(call, attempt, keepalive, fall_back)
        call.sent = functools.partial(relay.usage, call)
        async with stack:
            items, pending = first
            for item in items:
                committed = True
                if item is not None and call.ttft_ms is None:
                    call.first_token()
                yield item
            if pending is not None:
                raise pending
            async for block in blocks:
                if block is None:
                    yield None
                    continue
                for data in block:
                    for chunk in relay.chunks(data):
                        if call.ttft_ms is None:
                            call.first_token()
                            await call.attempts.answered()  # the stream began with keep-alives only
                        yield chunk
            relay.end()
        if call.ttft_ms is None:
            raise upstream.bad_response(relay.target, "an empty stream")
        status, error_code = 200, ""
        for chunk in relay.tail(relay.usage(call)):
            yield chunk
    except GatewayError as exc:
        status, error_code = exc.status, error_code_of(exc)
        if not committed:
            raise
        await call.attempts.note_failure(exc)
        assert relay is not None  # committed: the stream was open
        for chunk in relay.failed(exc):
            yield chunk
    except Exception:
        status, error_code = 500, "server_error"
        raise
    finally:
        usage = relay.usage(call) if relay is not None else call.estimated()
        call.finish_reasons = finish_reasons_of(getattr(relay, "last", None))
        await call.finish(usage, status, error_code)
