"""Talking to upstreams (OpenAI-compatible, Anthropic's Messages API or Google's Gemini API); the only
module that imports httpx.

One pooled `httpx.AsyncClient` per provider configuration and event loop (a client's connections
belong to the loop that opened them). Every transport or protocol fault becomes a GatewayError in
OpenAI's shape: unreachable -> 502 upstream_unavailable, timeout -> 504 upstream_timeout, upstream
4xx -> same status with the upstream's message, upstream 5xx or an unreadable answer -> 502.
Messages never carry the provider's key, stack traces or file paths (`scrub` cleans anything the
upstream says, gateway.error_text), and the log records the provider's name and the fault's class only.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import itertools
import json
import logging
import math
import re
import ssl
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import certifi
import httpcore
import httpx
from django.conf import settings

from catalogue.models import Provider
from gateway.error_text import clean
from gateway.errors import GatewayError, UpstreamFault
from gateway.network import AsyncioBackend
from gateway.translate_anthropic.errors import openai_error
from gateway.verbatim import Verbatim

log = logging.getLogger(__name__)

# Anything that looks like a secret key in an upstream's message (e.g. "Incorrect API key provided: sk-ab***yz").
_KEYLIKE = re.compile(r"\b(sk|key|token)-[A-Za-z0-9_\-*.]{6,}", re.IGNORECASE)
_MAX_ERROR_BODY = 64 * 1024


@dataclass(frozen=True)
class Target:
    """Where and how to call one provider; built from catalogue.models.Provider."""

    name: str
    base_url: str
    # Out of the repr: tracebacks with locals (Django's debug page, error e-mails) show it.
    api_key: str = field(repr=False)
    connect_timeout: float
    read_timeout: float
    kind: str = Provider.Kind.OPENAI

    @property
    def anthropic(self) -> bool:
        return self.kind == Provider.Kind.ANTHROPIC

    @property
    def api_name(self) -> str:
        return "Gemini's API" if self.gemini else "Anthropic's API" if self.anthropic else "The OpenAI-compatible API"

    @property
    def gemini(self) -> bool:
        return self.kind == Provider.Kind.GEMINI

    def gemini_path(self, model: str, stream: bool) -> str:
        """Gemini's generateContent (or its stream, as server-sent events) of `model` under the base URL."""
        return self.gemini_method(model, "streamGenerateContent?alt=sse" if stream else "generateContent")

    def gemini_method(self, model: str, method: str) -> str:
        """A method of `model` in Gemini's API under the base URL, given with or without its version (/v1beta)."""
        version = "" if re.search(r"/v1(beta\d*|alpha)?$", self.base_url.rstrip("/")) else "/v1beta"
        return f"{version}/models/{quote(model.removeprefix('models/'), safe='/')}:{method}"

    @property
    def models_path(self) -> str:
        return "/v1beta/models" if self.gemini and self.gemini_path("m", False).startswith("/v1beta") else "/models"

    @property
    def messages_path(self) -> str:
        """Anthropic's /v1/messages under the base URL, given with or without its /v1."""
        return "/messages" if self.base_url.rstrip("/").endswith("/v1") else "/v1/messages"

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.anthropic:
            headers["anthropic-version"] = ANTHROPIC_VERSION
            if self.api_key:
                headers["x-api-key"] = self.api_key
        elif self.gemini:
            if self.api_key:
                headers["x-goog-api-key"] = self.api_key
        elif self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def request(
        self, client: httpx.AsyncClient, path: str, body: bytes, extra: dict[str, str] | None = None
    ) -> httpx.Request:
        """A POST with the URL and headers parsed once per target (httpx's parsing shows in profiles)."""
        key = (self.base_url, path, self.api_key, self.kind)
        parsed = _parsed.get(key)
        if parsed is None:
            if len(_parsed) > 1000:
                _parsed.clear()
            parsed = _parsed[key] = (httpx.URL(self.url(path)), httpx.Headers(self.headers()))
        url, headers = parsed
        if extra:
            headers = httpx.Headers({**headers, **extra})
        return client.build_request("POST", url, content=body, headers=headers)


_parsed: dict[tuple[str, str, str, str], tuple[httpx.URL, httpx.Headers]] = {}

# The Messages API version we speak (its request and answer shapes); betas are the client's to ask for.
ANTHROPIC_VERSION = "2023-06-01"


_key_cache: dict[tuple[int, str], str] = {}


def target_for(provider: Provider) -> Target:
    """How to call a provider; a stored key is decrypted once per stored value (decrypting costs)."""
    if provider.api_key_env or not provider.api_key_encrypted:
        api_key = provider.get_api_key()  # the environment may change; reading it is cheap
    else:
        cache_key = (provider.pk, provider.api_key_encrypted)
        api_key = _key_cache.get(cache_key, "")
        if not api_key:
            api_key = _key_cache[cache_key] = provider.get_api_key()
    return Target(
        name=provider.name,
        base_url=provider.base_url,
        api_key=api_key,
        connect_timeout=provider.connect_timeout,
        read_timeout=provider.read_timeout,
        kind=provider.kind,
    )


class _Shards:
    """Several pooled clients for one provider, used in turn.

    httpcore scans every connection of a pool on every request and release, so a pool's cost
    grows with its size (see the README's Performance section). Shards of a few connections keep
    each scan short.
    """

    def __init__(self, target: Target) -> None:
        total = int(settings.GATEWAY_UPSTREAM_CONNECTIONS)
        count = max(1, min(SHARDS, total))
        per_shard = max(1, total // count)
        timeout = httpx.Timeout(target.read_timeout, connect=target.connect_timeout, pool=target.connect_timeout)
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard, keepalive_expiry=30)
        self.clients = [
            httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False, transport=_transport(limits))
            for _ in range(count)
        ]
        self._turn = itertools.cycle(self.clients)

    def next(self) -> httpx.AsyncClient:
        return next(self._turn)


SHARDS = 32


def _transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's transport over a pool on plain asyncio (gateway.network) rather than anyio.

    httpx takes no network backend, so its pool is replaced by one with the same settings.
    """
    transport = httpx.AsyncHTTPTransport(verify=_tls_context(), limits=limits, trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=_tls_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=AsyncioBackend(),
    )
    return transport


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client: each of its own reads the CA bundle again, and a
    provider's first request on a loop builds up to one client per shard."""
    return ssl.create_default_context(cafile=certifi.where())


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, float, float], _Shards]] = (
    weakref.WeakKeyDictionary()
)


def client_for(target: Target) -> httpx.AsyncClient:
    """A pooled client for the target, on this event loop (connections belong to their loop)."""
    pools = _pools.setdefault(asyncio.get_running_loop(), {})
    key = (target.base_url, target.connect_timeout, target.read_timeout)
    shards = pools.get(key)
    if shards is None:
        shards = pools[key] = _Shards(target)
    return shards.next()


def scrub(text: str, target: Target) -> str:
    """An upstream's error text as a client may read it: no key, no stack trace, no file path."""
    text = clean(text)
    if target.api_key:
        text = text.replace(target.api_key, "***")
    return _KEYLIKE.sub(lambda m: m.group(1) + "-***", text)


def _transport_error(exc: Exception, target: Target) -> GatewayError:
    log.warning("upstream %s: %s", target.name, exc.__class__.__name__)
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        return GatewayError(
            502,
            f"The upstream provider '{target.name}' could not be reached.",
            type="upstream_error",
            code="upstream_unavailable",
            fault=UpstreamFault(retryable=True, down=True),
        )
    if isinstance(exc, httpx.TimeoutException):
        return GatewayError(
            504,
            f"The upstream provider '{target.name}' did not answer in time.",
            type="upstream_error",
            code="upstream_timeout",
            fault=UpstreamFault(retryable=True),
        )
    return GatewayError(
        502,
        f"The connection to the upstream provider '{target.name}' failed.",
        type="upstream_error",
        code="upstream_error",
        fault=UpstreamFault(retryable=True),
    )


def _describe(payload: Any) -> tuple[str, str | None, str | None, str | None]:
    """message, type, code, param of an error answer in OpenAI's shape (or a few others)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):

        def text(name: str) -> str | None:
            value = error.get(name)
            return value if isinstance(value, str) else None

        return str(error.get("message") or ""), text("type"), text("code"), text("param")
    if isinstance(error, str):
        return error, None, None, None
    if isinstance(payload, dict):
        for name in ("message", "detail"):  # FastAPI-style and others
            if isinstance(payload.get(name), str):
                return payload[name], None, None, None
    return "", None, None, None


def status_error(status: int, body: bytes, target: Target, headers: httpx.Headers | None = None) -> GatewayError:
    """An upstream's non-2xx answer as our error: 4xx keep status and message, 5xx become 502."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    message, type_, code, param = _describe(payload)
    if target.gemini:
        type_, code = _GOOGLE_ERRORS.get(_google_status(payload), (type_, code))
    if target.anthropic:
        return _anthropic_status_error(status, type_, message, target, headers)
    if not message:
        message = body[:300].decode("utf-8", "replace").strip() or f"HTTP {status}"
    message = scrub(message, target)[:2000]
    log.warning("upstream %s answered HTTP %s", target.name, status)
    retry_after = _retry_after(headers.get("retry-after") if headers is not None else None)
    fault = UpstreamFault(retryable=status in RETRYABLE_STATUSES or status >= 500, retry_after=retry_after)
    if 400 <= status < 500:
        extra = {}
        if status == 429 and retry_after is not None:
            extra["Retry-After"] = str(math.ceil(retry_after))
        return GatewayError(
            status,
            f"Upstream provider '{target.name}': {message}",
            type=type_ or "invalid_request_error",
            code=code,
            param=param,
            headers=extra,
            fault=fault,
        )
    return GatewayError(
        502,
        f"The upstream provider '{target.name}' failed (HTTP {status}): {message}",
        type="upstream_error",
        code="upstream_error",
        fault=fault,
    )


def _anthropic_status_error(
    status: int, anthropic_type: str | None, message: str, target: Target, headers: httpx.Headers | None
) -> GatewayError:
    """An Anthropic upstream's error answer: its type says what it is (529 overloaded_error -> our 503)."""
    ours, type_, code = openai_error(anthropic_type)
    if 400 <= status < 500 and anthropic_type is None:
        ours, type_, code = status, "invalid_request_error", None
    retry_after = _retry_after(headers.get("retry-after") if headers is not None else None)
    retryable = status in RETRYABLE_STATUSES or status >= 500
    extra = {"Retry-After": str(math.ceil(retry_after))} if ours == 429 and retry_after is not None else {}
    text = scrub(message or f"HTTP {status}", target)[:2000]
    return GatewayError(
        ours,
        f"Upstream provider '{target.name}': {text}",
        type=type_,
        code=code,
        headers=extra,
        fault=UpstreamFault(retryable=retryable, retry_after=retry_after),
    )


# Google's error statuses (`{"error": {"code", "message", "status"}}`) as OpenAI's type and code.
_GOOGLE_ERRORS = {
    "INVALID_ARGUMENT": ("invalid_request_error", None),
    "FAILED_PRECONDITION": ("invalid_request_error", "failed_precondition"),
    "NOT_FOUND": ("invalid_request_error", "not_found"),
    "UNAUTHENTICATED": ("authentication_error", "upstream_authentication"),
    "PERMISSION_DENIED": ("permission_error", "upstream_permission"),
    "RESOURCE_EXHAUSTED": ("rate_limit_exceeded", "rate_limit_exceeded"),
    "UNAVAILABLE": ("upstream_error", "upstream_overloaded"),
    "DEADLINE_EXCEEDED": ("upstream_error", "upstream_timeout"),
}


def _google_status(payload: Any) -> str:
    error = payload.get("error") if isinstance(payload, dict) else None
    status = error.get("status") if isinstance(error, dict) else None
    return status if isinstance(status, str) else ""


# Statuses below 500 another attempt may cure: overloaded or timing out upstreams, a conflict.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, from its seconds or HTTP-date form; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def event_error(payload: dict[str, Any], target: Target) -> GatewayError:
    """An error event inside an upstream's stream."""
    message, _type, code, _param = _describe(payload)
    log.warning("upstream %s sent an error event", target.name)
    return GatewayError(
        502,
        f"The upstream provider '{target.name}' failed: {scrub(message, target)[:2000] or 'unknown error'}",
        type="upstream_error",
        code=code or "upstream_error",
        fault=UpstreamFault(retryable=True),
    )


def bad_response(target: Target, what: str = "an unreadable answer") -> GatewayError:
    log.warning("upstream %s: %s", target.name, what)
    return GatewayError(
        502,
        f"The upstream provider '{target.name}' sent {what}.",
        type="upstream_error",
        code="upstream_bad_response",
        fault=UpstreamFault(retryable=True),
    )


def _content(response: httpx.Response, target: Target) -> bytes:
    """The body of a successful answer; GatewayError for an error status."""
    if response.status_code >= 300:
        raise status_error(response.status_code, response.content[:_MAX_ERROR_BODY], target, response.headers)
    return response.content


def _json_answer(response: httpx.Response, target: Target) -> Any:
    """The decoded JSON of a successful answer; GatewayError for an error status or unreadable body."""
    content = _content(response, target)
    try:
        return json.loads(content)
    except ValueError:
        raise bad_response(target) from None


async def _post(target: Target, path: str, body: bytes, extra: dict[str, str] | None) -> httpx.Response:
    client = client_for(target)
    try:
        return await client.send(target.request(client, path, body, extra))
    except httpx.HTTPError as exc:
        raise _transport_error(exc, target) from None


async def post_json(target: Target, path: str, body: bytes, extra: dict[str, str] | None = None) -> dict[str, Any]:
    """POST (with `extra` headers) and return the JSON object answered; GatewayError on any fault."""
    payload = _json_answer(await _post(target, path, body, extra), target)
    if not isinstance(payload, dict):
        raise bad_response(target)
    return payload


async def post_verbatim(target: Target, path: str, body: bytes) -> Verbatim:
    """POST and return the JSON object answered, with the text it came as (a passthrough's answer)."""
    content = _content(await _post(target, path, body, None), target)
    try:
        return Verbatim.of(content.decode())
    except ValueError:  # UnicodeDecodeError is one
        raise bad_response(target) from None


async def list_models(provider: Provider | Target) -> list[dict[str, Any]]:
    """The upstream's GET /models `data` (for the admin's check and import actions).

    A client of its own: the admin calls this from a short-lived event loop (async_to_sync).
    """
    target = provider if isinstance(provider, Target) else target_for(provider)
    timeout = httpx.Timeout(min(target.read_timeout, 30.0), connect=target.connect_timeout)
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
        try:
            response = await client.get(target.url(target.models_path), headers=target.headers())
        except httpx.HTTPError as exc:
            raise _transport_error(exc, target) from None
    payload = _json_answer(response, target)
    data = payload.get("data") if isinstance(payload, dict) else None
    if target.gemini and isinstance(payload, dict) and isinstance(payload.get("models"), list):
        # Google's list: {"models": [{"name": "models/gemini-2.5-flash", ...}]}
        named = [m for m in payload["models"] if isinstance(m, dict) and isinstance(m.get("name"), str)]
        data = [{**m, "id": m["name"].removeprefix("models/")} for m in named]
    if not isinstance(data, list):
        raise bad_response(target, "a model list without `data`")
    return [item for item in data if isinstance(item, dict) and isinstance(item.get("id"), str)]


class EventStream:
    """The `data:` payloads of an upstream's server-sent events, as raw strings, until `[DONE]`."""

    def __init__(self, response: httpx.Response, target: Target) -> None:
        self._response = response
        self._target = target
        self._chunks = response.aiter_bytes()
        self.ended = False  # [DONE] came: what follows is only the end of the HTTP body

    async def blocks(self) -> AsyncIterator[list[str]]:
        """Each network read's complete events (a list, possibly empty); faults become GatewayError."""
        buffer = b""
        try:
            async for raw in self._chunks:
                buffer += raw
                if b"\r" in buffer:
                    buffer = buffer.replace(b"\r\n", b"\n")
                if b"\n\n" not in buffer:
                    continue
                *events, buffer = buffer.split(b"\n\n")
                payloads: list[str] = []
                for event in events:
                    data = _event_data(event)
                    if data is None:
                        continue
                    if data == "[DONE]":
                        self.ended = True
                        yield payloads
                        return
                    payloads.append(data)
                yield payloads
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self._target) from None
        tail = _event_data(buffer) if buffer.strip() else None
        if tail is not None and tail != "[DONE]":
            yield [tail]

    async def finish(self) -> None:
        """Read the body's end after [DONE], so the connection goes back to the pool.

        Closing a response whose body was not read to its end closes its connection: every stream
        would pay for a new TCP connection.
        An upstream that keeps the body open after [DONE] is closed after DRAIN_SECONDS.
        """
        with contextlib.suppress(Exception):
            async with asyncio.timeout(DRAIN_SECONDS):
                async for _chunk in self._chunks:
                    pass


DRAIN_SECONDS = 0.5


def _event_data(event: bytes) -> str | None:
    """The data of one event; None for comments, keep-alives and events without data."""
    if event.startswith(b"data: ") and b"\n" not in event:
        return event[6:].decode()  # the usual one-line event
    lines = [line for line in event.split(b"\n") if line.startswith(b"data:")]
    if not lines:
        return None
    return "\n".join(line[5:].removeprefix(b" ").decode() for line in lines)


@asynccontextmanager
async def open_stream(
    target: Target, path: str, body: bytes, extra: dict[str, str] | None = None
) -> AsyncIterator[EventStream]:
    """POST a streaming request; yields the event stream once the upstream answered 200.

    Leaving the block (normally, by error or by cancellation) closes the upstream request.
    """
    client = client_for(target)
    request = target.request(client, path, body, extra)
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise _transport_error(exc, target) from None
    try:
        if response.status_code >= 300:
            try:
                content = await _read_limited(response)
            except httpx.HTTPError as exc:
                raise _transport_error(exc, target) from None
            raise status_error(response.status_code, content, target, response.headers)
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" not in content_type:
            raise bad_response(target, f"a non-streaming answer ({content_type or 'no content type'}) to a stream")
        events = EventStream(response, target)
        yield events
        if events.ended:
            await events.finish()
    finally:
        await response.aclose()


async def _read_limited(response: httpx.Response) -> bytes:
    content = b""
    async for chunk in response.aiter_bytes():
        content += chunk
        if len(content) >= _MAX_ERROR_BODY:
            break
    return content
