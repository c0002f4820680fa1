"""The gateway's business logic, shared by the /v1 views and the browser chat consumer.

    caller = await authenticate_bearer(request.headers.get("Authorization"))
    answer = await create_completion(caller, body)               # non-streaming
    async for chunk in stream_completion(caller, body): ...      # streaming

Hot-path design (the benchmark asks for a few milliseconds of overhead at most):
- The key is looked up on every request (a revoked key fails on the very next call); the model
  and its provider in the same way, one indexed query each. Database work runs in the default
  thread pool (thread_sensitive=False) so requests don't queue behind one another's queries.
- The usage ledger is written after the answer, by a per-event-loop writer that batches the rows
  of concurrent requests into one INSERT (see `_Ledger`); `flush_usage()` waits for it. Key
  `last_used_at` rides along, at most once a minute per key.
- Streamed chunks are parsed with `json` and only `model` (and usage) rewritten; no pydantic.
- The upstream is read by a pump task feeding a small queue, so a silent upstream can be
  answered with keep-alive comments without cancelling the read, and closing the generator
  (client gone, aclose, task cancelled) cancels the pump and closes the upstream request at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hmac
import json
import logging
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar, cast

from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, User
from gateway import upstream
from gateway.errors import GatewayError
from gateway.models import LanguageModel, Provider, UsageRecord
from gateway.protocol import ChatCompletionRequest, parse_chat_request

log = logging.getLogger(__name__)

T = TypeVar("T")

# A key's last_used_at is written when it is older than this (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)
CLIENT_CLOSED = 499  # nginx's "client closed request", for streams the consumer abandoned


@dataclass(frozen=True)
class Caller:
    """Who is calling, for auth, limits and the usage ledger."""

    user: User
    api_key: ApiKey | None  # None for browser chat
    source: str  # UsageRecord.Source.API or .CHAT
    # The model looked up with the key (authenticate_bearer's model_hint), used once by get_model.
    _prefetched: dict[str, LanguageModel | None] = field(default_factory=dict, compare=False, repr=False)


# ---------------------------------------------------------------------------------------------
# Database access off the event loop


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
_executor = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="gateway-db")


async def _db(fn: Callable[..., T], *args: Any) -> T:
    """Run ORM work on the gateway's database threads.

    What sync_to_async(thread_sensitive=False) does, minus its per-call wrapping and context
    copying (a tenth of the gateway's CPU at 32 concurrent requests, measured). The threads
    belong to the process, not to an event loop, so their connections outlive loops.
    """
    return await asyncio.get_running_loop().run_in_executor(_executor, _reconnecting(fn), *args)


def close_db_connections() -> None:
    """Close the database threads' connections (tests, before the test database is dropped)."""
    if not _executor._threads:
        return
    barrier = threading.Barrier(DB_THREADS, timeout=10)

    def close() -> None:
        connection.close()
        barrier.wait()  # holds each thread until every one of them has run this once

    for future in [_executor.submit(close) for _ in range(DB_THREADS)]:
        future.result()


# ---------------------------------------------------------------------------------------------
# Authentication and the catalogue

_INVALID_KEY = "Incorrect API key provided. You can find your API keys on your profile page."


def _unauthorized(message: str = _INVALID_KEY) -> GatewayError:
    return GatewayError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


class _Joined:
    """A hand-written `child JOIN parent` query returning model instances, for the hot path.

    Measured: the ORM spends ~0.4 ms compiling each of these lookups and building the objects,
    the database ~0.05 ms answering. Columns come from the models' metadata, so fields added
    later are read too; from_db_value converters (JSONField) are applied as the ORM would.
    """

    def __init__(self, child: type[Any], fk: str, parent: type[Any], where: str) -> None:
        self.child, self.parent, self.fk = child, parent, fk
        qn = connection.ops.quote_name
        self.child_fields = list(child._meta.concrete_fields)
        self.parent_fields = list(parent._meta.concrete_fields)
        columns = [f"c.{qn(f.column)}" for f in self.child_fields] + [f"p.{qn(f.column)}" for f in self.parent_fields]
        tables = f"{qn(child._meta.db_table)} c JOIN {qn(parent._meta.db_table)} p"
        join = f"p.{qn(parent._meta.pk.column)} = c.{qn(child._meta.get_field(fk).column)}"
        # Identifiers from model metadata (quoted); values are always query parameters.
        self.sql = f"SELECT {', '.join(columns)} FROM {tables} ON {join} WHERE {where}"  # noqa: S608

    @staticmethod
    def _build(model: type[Any], fields: list[Any], row: tuple[Any, ...]) -> Any:
        values = list(row)
        for index, field_ in enumerate(fields):
            if values[index] is not None and hasattr(field_, "from_db_value"):
                values[index] = field_.from_db_value(values[index], None, connection)
        return model.from_db("default", [f.attname for f in fields], values)

    def fetch(self, *params: Any) -> list[Any]:
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        split = len(self.child_fields)
        found = []
        for row in rows:
            child = self._build(self.child, self.child_fields, row[:split])
            setattr(child, self.fk, self._build(self.parent, self.parent_fields, row[split:]))
            found.append(child)
        return found


@functools.cache
def _key_query() -> _Joined:
    return _Joined(ApiKey, "user", User, "c.prefix = %s")


@functools.cache
def _model_query() -> _Joined:
    return _Joined(LanguageModel, "provider", Provider, "c.public_id = %s AND c.enabled AND p.enabled")


def _find_key(secret: str) -> ApiKey | None:
    """accounts.keys.find_key without the ORM's overhead: same format check, hash and comparison."""
    if not keys.looks_like_key(secret):
        return None
    presented = keys._hash(secret)
    prefix = secret[len(keys.KEY_PREFIX) : len(keys.KEY_PREFIX) + keys.PREFIX_LEN]
    for candidate in _key_query().fetch(prefix):
        if hmac.compare_digest(candidate.key_hash, presented):
            return cast(ApiKey, candidate)
    return None


def _find_model(public_id: str) -> LanguageModel | None:
    found = _model_query().fetch(public_id)
    return cast(LanguageModel, found[0]) if found else None


def _authenticate(secret: str, public_id: str | None) -> tuple[ApiKey | None, LanguageModel | None]:
    key = _find_key(secret)
    model = _find_model(public_id) if key is not None and public_id else None
    return key, model


async def authenticate_bearer(authorization_header: str | None, *, model_hint: str | None = None) -> Caller:
    """The caller of an `Authorization: Bearer <key>` header; GatewayError 401 invalid_api_key.

    `model_hint`: the model id the request asks for. It is looked up in the same trip to the
    database and kept on the Caller for get_model: one thread hop per request instead of two.
    """
    if not authorization_header:
        raise _unauthorized(
            "You didn't provide an API key. Send it in an Authorization header using Bearer auth "
            "(i.e. Authorization: Bearer YOUR_KEY)."
        )
    scheme, _, secret = authorization_header.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise _unauthorized("The Authorization header must be 'Bearer YOUR_KEY'.")
    key, model = await _db(_authenticate, secret, model_hint)
    if key is None or not key.is_active or not key.user.is_active:
        raise _unauthorized()
    if key.last_used_at is None or timezone.now() - key.last_used_at >= LAST_USED_RESOLUTION:
        _ledger().touch(key.pk)
    caller = Caller(key.user, key, UsageRecord.Source.API)
    if model_hint:
        caller._prefetched[model_hint] = model
    return caller


def _not_found(public_id: str) -> GatewayError:
    return GatewayError(
        404,
        f"The model '{public_id}' does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def _check_scope(public_id: str, caller: Caller | None) -> None:
    key = caller.api_key if caller is not None else None
    if key is not None and key.allowed_models and public_id not in key.allowed_models:
        raise GatewayError(
            403,
            f"This API key may not use the model '{public_id}'. It may use: {', '.join(key.allowed_models)}.",
            type="permission_error",
            param="model",
            code="model_not_allowed",
        )


async def get_model(public_id: str, caller: Caller | None = None) -> LanguageModel:
    """An enabled model of an enabled provider; 404 model_not_found, or 403 for a key scoped to others."""
    if caller is not None and public_id in caller._prefetched:
        model = caller._prefetched.pop(public_id)
    else:
        model = await _db(_find_model, public_id) if public_id else None
    if model is None:
        raise _not_found(public_id)
    _check_scope(public_id, caller)
    return model


def _enabled_models() -> list[LanguageModel]:
    return list(LanguageModel.objects.select_related("provider").filter(enabled=True, provider__enabled=True))


async def list_models(caller: Caller | None = None) -> list[LanguageModel]:
    """The enabled models (those a scoped key may use, for such a key), by public id."""
    models = await _db(_enabled_models)
    if caller is not None and caller.api_key is not None and caller.api_key.allowed_models:
        allowed = set(caller.api_key.allowed_models)
        models = [m for m in models if m.public_id in allowed]
    return models


def model_card(model: LanguageModel) -> dict[str, Any]:
    """A Model object as /v1/models shows it: OpenAI's fields, then the catalogue's."""
    return {
        "id": model.public_id,
        "object": "model",
        "created": int(model.created_at.timestamp()),
        "owned_by": model.owned_by or model.provider.name,
        "context_length": model.context_length,
        "max_output_tokens": model.max_output_tokens,
        "description": model.description,
        "category": model.category,
        "pricing": {
            "input_per_million": str(model.input_price_per_million.normalize()),
            "output_per_million": str(model.output_price_per_million.normalize()),
        },
    }


# ---------------------------------------------------------------------------------------------
# Usage: estimates and the ledger


def _text_tokens(chars: int) -> int:
    return -(-chars // 4)  # about four characters a token in English


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """A rough prompt token count, for upstreams that report no usage."""
    total = 3
    for message in body.get("messages") or ():
        total += 4
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            total += _text_tokens(len(content))
        elif isinstance(content, list):
            for part in content:
                text = part.get("text") if isinstance(part, dict) else None
                total += _text_tokens(len(text)) if isinstance(text, str) else 85
        if message.get("tool_calls"):
            total += _text_tokens(len(json.dumps(message["tool_calls"])))
    if body.get("tools"):
        total += _text_tokens(len(json.dumps(body["tools"])))
    return total


def _message_chars(message: Any) -> int:
    if not isinstance(message, dict):
        return 0
    chars = 0
    for name in ("content", "reasoning_content", "refusal"):
        value = message.get(name)
        if isinstance(value, str):
            chars += len(value)
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            chars += len(str(function.get("name") or "")) + len(str(function.get("arguments") or ""))
    return chars


@dataclass
class _Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def _reported_usage(value: Any) -> _Usage | None:
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return _Usage(max(prompt, 0), max(completion, 0))


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
                await _db(_write_ledger, rows, touched)
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


def _ledger() -> _Ledger:
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


@dataclass
class _Call:
    """One request's bookkeeping, from validation to its ledger row."""

    caller: Caller
    public_id: str
    stream: bool
    started: float = field(default_factory=time.perf_counter)
    model: LanguageModel | None = None
    ttft_ms: int | None = None
    reservation: Any = None
    recorded: bool = False

    def first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = int((time.perf_counter() - self.started) * 1000)

    def record(self, usage: _Usage, status: int = 200, error_code: str = "") -> None:
        """Queue the request's ledger row, once."""
        if self.recorded:
            return
        self.recorded = True
        model = self.model
        cost = model.cost(usage.prompt_tokens, usage.completion_tokens) if model is not None else Decimal(0)
        _ledger().add(
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


def _limits() -> Any:
    try:
        from gateway import limits
    except ImportError:  # limits not installed in this build
        return None
    return limits


async def _reserve(
    call: _Call, model: LanguageModel, body: dict[str, Any], response_headers: dict[str, str] | None
) -> None:
    limits = _limits()
    if limits is None:
        return
    prompt = limits.estimate_prompt_tokens(body)
    completion = limits.requested_completion_tokens(body, model.max_output_tokens)
    call.reservation = await limits.reserve(call.caller, model, prompt, completion)
    if response_headers is not None:
        response_headers.update(limits.headers(call.reservation))


async def _settle(call: _Call, usage: _Usage) -> None:
    limits = _limits()
    if limits is None or call.reservation is None:
        return
    cost = call.model.cost(usage.prompt_tokens, usage.completion_tokens) if call.model else Decimal(0)
    await limits.settle(call.reservation, usage.prompt_tokens, usage.completion_tokens, cost)


async def rate_limit_headers(caller: Caller) -> dict[str, str]:
    """The x-ratelimit-* headers for an answer that reserved nothing (an error after auth)."""
    limits = _limits()
    if limits is None:
        return {}
    headers: dict[str, str] = await limits.peek_headers(caller)
    return headers


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
        call.record(_Usage(), exc.status, exc.code or exc.type)
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
    usage = _Usage(estimated=True)
    status, error_code = 200, ""
    try:
        target = upstream.target_for(model.provider)
        payload = await upstream.post_json(target, "/chat/completions", _upstream_body(body, model, False))
        if not isinstance(payload.get("choices"), list):
            raise upstream.bad_response(target, "an answer without choices")
        _normalize_completion(payload, request.model)
        reported = _reported_usage(payload.get("usage"))
        if reported is None:
            chars = sum(_message_chars(c.get("message")) for c in payload["choices"] if isinstance(c, dict))
            usage = _Usage(estimate_prompt_tokens(body), _text_tokens(chars), estimated=True)
            payload["usage"] = usage.as_dict()
        else:
            usage = reported
        return payload
    except GatewayError as exc:
        status, error_code = exc.status, exc.code or exc.type
        usage = _Usage(estimate_prompt_tokens(body), 0, estimated=True)
        raise
    except asyncio.CancelledError:
        status, error_code = CLIENT_CLOSED, "client_disconnected"
        usage = _Usage(estimate_prompt_tokens(body), 0, estimated=True)
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
    """Like stream_completion, but yields None whenever the upstream was silent for `keepalive` s."""
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
    reported: _Usage | None = None
    chars = 0
    status, error_code = CLIENT_CLOSED, "client_disconnected"
    yielded = False
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
                        if "usage" in chunk:
                            if chunk["usage"]:
                                reported = _reported_usage(chunk["usage"]) or reported
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
                                chars += _message_chars(delta)
                            if "finish_reason" not in choice:
                                choice["finish_reason"] = None
                        last = chunk
                        call.first_token()
                        yielded = True
                        yield chunk
            finally:
                # Stop reading before the upstream response is closed on leaving the block.
                await _stop(pump)
        if not yielded:
            raise upstream.bad_response(target, "an empty stream")
        final = reported or _Usage(estimate_prompt_tokens(body), _text_tokens(chars), estimated=True)
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
        if not yielded:
            raise
        yield exc.to_dict()
    finally:
        usage = reported or _Usage(estimate_prompt_tokens(body), _text_tokens(chars), estimated=True)
        call.record(usage, status, error_code)
        await _settle(call, usage)
