"""What the serving code tells operations, and where it goes: Prometheus metrics, OpenTelemetry spans, JSON logs.

    app = observed(app)                        # the /v1 ASGI app: a span, a log line and metrics per request
    watch = attempt(model, deployment)         # an upstream attempt begins (a child span, a counter)
    failed(watch, deployment, status, code)    # ... and failed with an upstream's fault
    ended(watch)                               # ... and is over (idempotent, None does nothing)
    settled(fields, usage, finish_reasons)     # a call settled: its ledger row's fields, before the ledger writes it
    watch = reply(message_id)                  # a chat reply begins; ended(watch) when it is over
    watch = chat_socket()                      # a chat socket opened; ended(watch) when it closed
    refused(code)                              # the limits refused a request

Each part is configured once per process from the settings (`configure`, from the app's ready()):
metrics when METRICS_TOKEN or METRICS_ALLOWED_ADDRESSES is set, traces when OTEL_EXPORTER_OTLP_ENDPOINT
is, a JSON line per request when LOG_FORMAT=json. What is off costs a flag test per hook, and neither
prometheus_client nor OpenTelemetry's SDK and exporter are imported for it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from django.urls import Resolver404, resolve

from usage import ledger

if TYPE_CHECKING:
    from catalogue.models import Deployment, LanguageModel
    from usage.tokens import Usage

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]


class _Parts:
    """Which parts are on in this process, and their modules (imported only when on)."""

    metrics: Any = None  # operations.metrics
    tracing: Any = None  # operations.tracing
    log_requests = False

    @property
    def any(self) -> bool:
        return self.metrics is not None or self.tracing is not None or self.log_requests


parts = _Parts()

# Values /metrics reads at each scrape, registered by the apps that know them (the gateway: each
# deployment's circuit): name, help, label names, and a function giving (label values, value) pairs.
Samples = Callable[[], Iterable[tuple[tuple[str, ...], float]]]
scrape_sources: list[tuple[str, str, tuple[str, ...], Samples]] = []


def configure(*, metrics: bool, tracing: bool, log_requests: bool) -> None:
    if metrics:
        from operations import metrics as metrics_module

        metrics_module.start()
        parts.metrics = metrics_module
        ledger.backlog_watchers.append(metrics_module.ledger_backlog)
    if tracing:
        from operations import tracing as tracing_module

        tracing_module.start()
        parts.tracing = tracing_module
    parts.log_requests = log_requests


@dataclass(slots=True)
class Exchange:
    """One /v1 request (or chat reply) as operations sees it; filled in as it goes."""

    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    span: Any = None
    status: int = 0
    row: SimpleNamespace | None = None  # the ledger row's fields (usage.UsageRecord's)
    usage: Usage | None = None
    finish_reasons: tuple[str, ...] = ()


current: ContextVar[Exchange | None] = ContextVar("operations_exchange", default=None)


def observed(app: ASGIApp) -> ASGIApp:
    """The /v1 ASGI app with a span, metrics and a log line per request (`app` itself when all are off)."""
    if not parts.any:
        return app

    async def observed_app(scope: Scope, receive: Callable[..., Awaitable[Any]], send: Any) -> None:
        exchange = Exchange(endpoint_of(scope.get("path", "")))
        token = current.set(exchange)
        stream = False

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal stream
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                stream = any(
                    v.startswith(b"text/event-stream") and n.lower() == b"content-type" for n, v in message["headers"]
                )
                if stream and parts.metrics is not None:
                    parts.metrics.streams(1)
            await send(message)

        try:
            if parts.tracing is not None:
                exchange.span = parts.tracing.request_span(scope)
                with parts.tracing.current(exchange.span):
                    await app(scope, receive, watched_send)
            else:
                await app(scope, receive, watched_send)
        finally:
            current.reset(token)
            if stream and parts.metrics is not None:
                parts.metrics.streams(-1)
            status = exchange.row.status if exchange.row is not None else exchange.status
            _finish(exchange, status, time.perf_counter() - exchange.started)

    return observed_app


@functools.lru_cache(maxsize=512)
def endpoint_of(path: str) -> str:
    """The route a /v1 path takes ("/v1/responses/<str:response_id>"); "other" for a path no view of its own
    serves, so clients cannot make up label values."""
    try:
        match = resolve(path)
    except Resolver404:
        return "other"
    return "/" + match.route if match.url_name else "other"


def _finish(exchange: Exchange, status: int, latency: float) -> None:
    if parts.metrics is not None:
        parts.metrics.request(exchange, status, latency)
    if exchange.span is not None:
        parts.tracing.end_request(exchange, status)
    if parts.log_requests:
        from operations.logs import log_request

        log_request(exchange, status, latency)


def settled(fields: dict[str, Any], usage: Usage, finish_reasons: tuple[str, ...] = ()) -> None:
    """A call settled with the ledger row of `fields` (queued, not yet written) and `usage`."""
    if not parts.any:
        return
    row = SimpleNamespace(**fields)  # read like the row the ledger will write, without building a model
    exchange = current.get()
    if exchange is None:  # a chat reply: no /v1 request around it, so it is counted and logged now
        exchange = Exchange("chat", row=row, usage=usage, finish_reasons=finish_reasons)
        _finish(exchange, row.status, row.latency_ms / 1000)
    else:
        exchange.row, exchange.usage, exchange.finish_reasons = row, usage, finish_reasons
    if parts.tracing is not None:
        parts.tracing.describe_call(row, usage, finish_reasons)


@dataclass(slots=True)
class Watch:
    """Something in flight (an attempt, a reply, a socket): what to undo when it ends."""

    gauge: Callable[[int], None] | None = None
    span: Any = None
    context: Any = None  # the tracing context token a reply's span was made current with


def attempt(model: LanguageModel, deployment: Deployment) -> Watch | None:
    if not parts.any:
        return None
    watch = Watch()
    if parts.metrics is not None:
        parts.metrics.attempt(deployment)
    if parts.tracing is not None:
        watch.span = parts.tracing.attempt_span(model, deployment)
    return watch


def failed(watch: Watch | None, deployment: Deployment | None, status: int, code: str | None) -> None:
    """The attempt `watch` of `deployment` failed with an upstream's fault (`status`, our error `code`)."""
    if watch is None or deployment is None:
        return
    if parts.metrics is not None:
        parts.metrics.attempt_failed(deployment, status)
    if watch.span is not None:
        parts.tracing.failed(watch.span, status, code)


def ended(watch: Watch | None) -> None:
    """`watch` is over (an attempt released, a reply finished, a socket closed); twice does nothing."""
    if watch is None:
        return
    if watch.gauge is not None:
        watch.gauge(-1)
        watch.gauge = None
    if watch.span is not None:
        parts.tracing.end(watch.span, watch.context)
        watch.span = watch.context = None


def reply(message_id: int) -> Watch | None:
    """A chat reply begins in this task: its span becomes current, so its call's attempts are its children."""
    if not parts.any:
        return None
    watch = Watch()
    if parts.metrics is not None:
        watch.gauge = parts.metrics.replies
        watch.gauge(1)
    if parts.tracing is not None:
        watch.span, watch.context = parts.tracing.reply_span(message_id)
    return watch


def chat_socket() -> Watch | None:
    if parts.metrics is None:
        return None
    watch = Watch(gauge=parts.metrics.sockets)
    watch.gauge(1)  # type: ignore[misc]
    return watch


def refused(code: str) -> None:
    """The limits refused a request (`code`: rate_limit_exceeded, insufficient_quota, ...)."""
    if parts.metrics is not None:
        parts.metrics.refused(code)
