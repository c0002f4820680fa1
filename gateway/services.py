"""Chat completions through the gateway, shared by the /v1 views and the browser chat consumer.

    caller = await auth.authenticate_bearer(request.headers.get("Authorization"))
    answer = await create_completion(caller, body)               # non-streaming
    async for chunk in stream_completion(caller, body): ...      # streaming

Who may call and with which model is gateway.auth; token estimates and the usage ledger are
gateway.ledger; the database threads gateway.dbthreads; rate limits and budgets gateway.limits.

Hot-path design (the benchmark asks for a few milliseconds of overhead at most):
- Streamed chunks are parsed with `json` and only `model` (and usage) rewritten; no pydantic.
- The upstream is read by a pump task feeding a small queue, so a silent upstream can be
  answered with keep-alive comments without cancelling the read, and closing the generator
  (client gone, aclose, task cancelled) cancels the pump and closes the upstream request at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gateway import limits, upstream
from gateway.auth import Caller, get_model
from gateway.errors import GatewayError
from gateway.ledger import Usage, current_ledger, estimate_prompt_tokens, message_chars, reported_usage, text_tokens
from gateway.models import LanguageModel, UsageRecord
from gateway.protocol import ChatCompletionRequest, parse_chat_request

log = logging.getLogger(__name__)

CLIENT_CLOSED = 499  # nginx's "client closed request", for streams the consumer abandoned


@dataclass
class _Call:
    """One request's bookkeeping, from validation to its ledger row."""

    caller: Caller
    public_id: str
    stream: bool
    started: float = field(default_factory=time.perf_counter)
    model: LanguageModel | None = None
    ttft_ms: int | None = None
    reservation: limits.Reservation | None = None
    recorded: bool = False

    def first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = int((time.perf_counter() - self.started) * 1000)

    def record(self, usage: Usage, status: int = 200, error_code: str = "") -> None:
        """Queue the request's ledger row, once."""
        if self.recorded:
            return
        self.recorded = True
        model = self.model
        cost = model.cost(usage.prompt_tokens, usage.completion_tokens) if model is not None else Decimal(0)
        current_ledger().add(
            UsageRecord(
                user=self.caller.user,
                api_key=self.caller.api_key,
                model=model,
                model_public_id=self.public_id[:200],
                source=self.caller.source,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                usage_estimated=usage.estimated,
                cost=cost,
                latency_ms=int((time.perf_counter() - self.started) * 1000),
                ttft_ms=self.ttft_ms,
                status=status,
                error_code=error_code[:64],
                stream=self.stream,
            )
        )


# ---------------------------------------------------------------------------------------------
# Limits (issue 7): the one place where rate limits and budgets attach to a generation.
# gateway.limits.reserve() runs before anything goes upstream (GatewayError 429 when over a
# limit), settle() after, with the real usage; headers() are the x-ratelimit-* answer headers.


async def _reserve(
    call: _Call, model: LanguageModel, body: dict[str, Any], response_headers: dict[str, str] | None
) -> None:
    prompt = limits.estimate_prompt_tokens(body)
    completion = limits.requested_completion_tokens(body, model.max_output_tokens)
    call.reservation = await limits.reserve(call.caller, model, prompt, completion)
    if response_headers is not None:
        response_headers.update(limits.headers(call.reservation))


async def _settle(call: _Call, usage: Usage) -> None:
    if call.reservation is None:
        return
    cost = call.model.cost(usage.prompt_tokens, usage.completion_tokens) if call.model else Decimal(0)
    await limits.settle(call.reservation, usage.prompt_tokens, usage.completion_tokens, cost)


async def rate_limit_headers(caller: Caller) -> dict[str, str]:
    """The x-ratelimit-* headers for an answer that reserved nothing (an error after auth)."""
    return await limits.peek_headers(caller)


# ---------------------------------------------------------------------------------------------
# Preparing a request


def _validate_limits(request: ChatCompletionRequest, model: LanguageModel) -> None:
    if not model.is_chat:
        raise GatewayError(
            400, f"The model '{model.public_id}' is not a chat model.", param="model", code="model_not_supported"
        )
    asked = request.output_limit()
    if asked is not None and asked[1] > model.max_output_tokens:
        param, value = asked
        raise GatewayError(
            400,
            f"{param} is too large: {value}. This model supports at most {model.max_output_tokens} "
            f"completion tokens, whereas you provided {value}.",
            param=param,
            code="invalid_value",
        )


def _upstream_body(body: dict[str, Any], model: LanguageModel, stream: bool) -> bytes:
    """The client's body, untouched but for the upstream's model name and our usage needs."""
    forwarded = dict(body)
    forwarded["model"] = model.upstream_model
    if forwarded.get("tools") is False:
        del forwarded["tools"]
    if stream:
        forwarded["stream"] = True
        # We always want the usage chunk for the ledger; the client gets it only if it asked.
        options = forwarded.get("stream_options")
        forwarded["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    else:
        forwarded.pop("stream", None)
        forwarded.pop("stream_options", None)
    return json.dumps(forwarded, separators=(",", ":"), ensure_ascii=False).encode()


async def _prepare(
    call: _Call, body: dict[str, Any], response_headers: dict[str, str] | None
) -> tuple[ChatCompletionRequest, LanguageModel]:
    """Validate, find the model, reserve limits. Failures are ledgered (after auth) and raised."""
    try:
        request = parse_chat_request(body)
        call.public_id = request.model
        model = await get_model(request.model, call.caller)
        call.model = model
        _validate_limits(request, model)
        await _reserve(call, model, body, response_headers)
    except GatewayError as exc:
        call.record(Usage(), exc.status, exc.code or exc.type)
        raise
    return request, model


# ---------------------------------------------------------------------------------------------
# Non-streaming


def _normalize_completion(payload: dict[str, Any], public_id: str) -> None:
    """Fill what some upstreams omit and the spec requires; answer with our public model id."""
    payload["model"] = public_id
    payload.setdefault("id", f"chatcmpl-{uuid.uuid4().hex}")
    payload["object"] = "chat.completion"
    if not isinstance(payload.get("created"), int):
        payload["created"] = int(time.time())
    for position, choice in enumerate(payload["choices"]):
        if not isinstance(choice, dict):
            continue
        choice.setdefault("index", position)
        choice.setdefault("logprobs", None)
        if choice.get("finish_reason") is None:
            choice["finish_reason"] = "stop"
        message = choice.get("message")
        if isinstance(message, dict):
            message.setdefault("role", "assistant")
            message.setdefault("content", None)
            message.setdefault("refusal", None)


async def create_completion(
    caller: Caller, body: dict[str, Any], *, response_headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """A non-streaming chat completion, answered with our public model id.

    `response_headers`, when given, receives headers for the answer (x-ratelimit-*).
    """
    call = _Call(caller, str(body.get("model", "")) if isinstance(body, dict) else "", stream=False)
    request, model = await _prepare(call, body, response_headers)
    usage = Usage(estimated=True)
    status, error_code = 200, ""
    try:
        target = upstream.target_for(model.provider)
        payload = await upstream.post_json(target, "/chat/completions", _upstream_body(body, model, False))
        if not isinstance(payload.get("choices"), list):
            raise upstream.bad_response(target, "an answer without choices")
        _normalize_completion(payload, request.model)
        reported = reported_usage(payload.get("usage"))
        if reported is None:
            chars = sum(message_chars(c.get("message")) for c in payload["choices"] if isinstance(c, dict))
            usage = Usage(estimate_prompt_tokens(body), text_tokens(chars), estimated=True)
            payload["usage"] = usage.as_dict()
        else:
            usage = reported
        return payload
    except GatewayError as exc:
        status, error_code = exc.status, exc.code or exc.type
        usage = Usage(estimate_prompt_tokens(body), 0, estimated=True)
        raise
    except asyncio.CancelledError:
        status, error_code = CLIENT_CLOSED, "client_disconnected"
        usage = Usage(estimate_prompt_tokens(body), 0, estimated=True)
        raise
    finally:
        call.record(usage, status, error_code)
        await _settle(call, usage)


# ---------------------------------------------------------------------------------------------
# Streaming

_END = object()


async def _pump(stream: upstream.EventStream, queue: asyncio.Queue[Any]) -> None:
    try:
        async for payloads in stream.blocks():
            if payloads:
                await queue.put(payloads)
        await queue.put(_END)
    except GatewayError as exc:
        await queue.put(exc)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # never let the consumer wait forever
        log.exception("reading the upstream stream failed")
        await queue.put(exc)


async def _stop(task: asyncio.Task[None]) -> None:
    if not task.done():
        task.cancel()
    # asyncio.wait never raises the task's own outcome, so a cancellation of *this* task (the
    # consumer going away) still propagates instead of being mistaken for the pump's.
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" noise


def stream_completion(caller: Caller, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """Chunk dicts of a streamed chat completion (our public model id); see the brief's contract.

    Raises GatewayError before the first chunk. After it, an upstream failure is yielded as one
    {"error": {...}} dict, then the stream ends. The usage chunk (choices []) is yielded only when
    the body asks with stream_options.include_usage. One UsageRecord is always written, also when
    the consumer stops early (aclose or cancellation closes the upstream request at once).
    """
    return _stream(caller, body, keepalive=None, response_headers=None)  # type: ignore[return-value]


def stream_events(
    caller: Caller,
    body: dict[str, Any],
    *,
    keepalive: float,
    response_headers: dict[str, str] | None = None,
) -> AsyncIterator[dict[str, Any] | None]:
    """Like stream_completion, but yields None whenever the upstream was silent for `keepalive` s.

    A None commits the stream as a chunk does: later failures are yielded as an error dict.
    """
    return _stream(caller, body, keepalive=keepalive, response_headers=response_headers)


async def _stream(
    caller: Caller,
    body: dict[str, Any],
    *,
    keepalive: float | None,
    response_headers: dict[str, str] | None,
) -> AsyncIterator[dict[str, Any] | None]:
    call = _Call(caller, str(body.get("model", "")) if isinstance(body, dict) else "", stream=True)
    request, model = await _prepare(call, body, response_headers)
    public_id = request.model
    wants_usage = request.wants_usage_chunk()
    reported: Usage | None = None
    chars = 0
    status, error_code = CLIENT_CLOSED, "client_disconnected"
    yielded = False  # a chunk went out
    committed = False  # anything went out (a keep-alive too): errors are yielded, not raised
    last: dict[str, Any] = {}
    try:
        target = upstream.target_for(model.provider)
        async with upstream.open_stream(target, "/chat/completions", _upstream_body(body, model, True)) as events:
            queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=16)
            pump = asyncio.ensure_future(_pump(events, queue))
            try:
                while True:
                    if keepalive is not None and queue.empty():
                        try:
                            async with asyncio.timeout(keepalive):
                                item = await queue.get()
                        except TimeoutError:
                            # The consumer answers a keep-alive with a 200: from here on, a
                            # failure must be an error event, no longer a raised GatewayError.
                            committed = True
                            yield None
                            continue
                    else:
                        item = await queue.get()
                    if item is _END:
                        break
                    if isinstance(item, Exception):
                        raise item if isinstance(item, GatewayError) else upstream.bad_response(target)
                    for data in item:
                        try:
                            chunk = json.loads(data)
                        except ValueError:
                            raise upstream.bad_response(target, "an unreadable stream event") from None
                        if not isinstance(chunk, dict):
                            raise upstream.bad_response(target, "an unreadable stream event")
                        choices = chunk.get("choices")
                        if "error" in chunk and not choices:
                            raise upstream.event_error(chunk, target)
                        if choices is not None and (
                            not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices)
                        ):
                            raise upstream.bad_response(target, "a stream event without a list of choices")
                        if "usage" in chunk:
                            if chunk["usage"]:
                                reported = reported_usage(chunk["usage"]) or reported
                            if wants_usage:
                                chunk["usage"] = None
                            else:
                                del chunk["usage"]
                        if not choices:
                            continue  # the usage chunk: ours goes out at the end, when asked for
                        chunk["model"] = public_id
                        chunk.setdefault("object", "chat.completion.chunk")
                        for choice in choices:
                            delta = choice.get("delta")
                            if delta:
                                chars += message_chars(delta)
                            if "finish_reason" not in choice:
                                choice["finish_reason"] = None
                        last = chunk
                        call.first_token()
                        yielded = committed = True
                        yield chunk
            finally:
                # Stop reading before the upstream response is closed on leaving the block.
                await _stop(pump)
        if not yielded:
            raise upstream.bad_response(target, "an empty stream")
        final = reported or Usage(estimate_prompt_tokens(body), text_tokens(chars), estimated=True)
        status, error_code = 200, ""
        if wants_usage:
            yield {
                "id": last.get("id") or f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion.chunk",
                "created": last.get("created") or int(time.time()),
                "model": public_id,
                "choices": [],
                "usage": final.as_dict(),
            }
    except GatewayError as exc:
        status, error_code = exc.status, exc.code or exc.type
        if not committed:
            raise
        yield exc.to_dict()
    finally:
        usage = reported or Usage(estimate_prompt_tokens(body), text_tokens(chars), estimated=True)
        call.record(usage, status, error_code)
        await _settle(call, usage)
