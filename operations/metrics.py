"""Prometheus metrics, right with any number of worker processes (prometheus_client's multiprocess mode).

Every worker writes its values to memory-mapped files in PROMETHEUS_MULTIPROC_DIR (set by the settings,
under VAR_DIR, before this module is imported; the launcher empties it when it starts); a scrape, on
whichever worker it lands, adds up every worker's files. Gauges of things in flight count live workers
only: a worker that exits drops its files for them. Values read at scrape time (each deployment's
circuit) come from the `scrape_sources` that other apps register.

Imported only when metrics are on (operations.observe).
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from catalogue.models import Deployment
    from operations.observe import Exchange

log = logging.getLogger(__name__)

# Seconds: a short answer takes well under one, a long stream minutes.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)

REQUESTS = Counter(
    "chatsite_requests",
    "Requests to /v1 and chat replies, by endpoint, model and status",
    ["endpoint", "model", "status"],
)
TOKENS = Counter("chatsite_tokens", "Tokens by model and type (input, output, cached input)", ["model", "type"])
COST = Counter("chatsite_cost_usd", "What requests cost, in US dollars, by model", ["model"])
LATENCY = Histogram(
    "chatsite_request_duration_seconds",
    "Time from a request's arrival to its last byte, by endpoint and model",
    ["endpoint", "model"],
    buckets=LATENCY_BUCKETS,
)
TTFT = Histogram(
    "chatsite_time_to_first_token_seconds",
    "Time from a streamed request's arrival to its first token, by endpoint and model",
    ["endpoint", "model"],
    buckets=TTFT_BUCKETS,
)
ATTEMPTS = Counter("chatsite_upstream_attempts", "Attempts at an upstream deployment", ["deployment", "provider"])
FAILURES = Counter(
    "chatsite_upstream_failures",
    "Attempts at an upstream deployment that failed, by the status we answered them with",
    ["deployment", "provider", "status"],
)
REFUSALS = Counter("chatsite_rate_limit_refusals", "Requests the rate limits or budgets refused, by code", ["code"])
STREAMS = Gauge("chatsite_streams_in_flight", "/v1 event streams being sent", multiprocess_mode="livesum")
SOCKETS = Gauge("chatsite_chat_sockets_open", "Chat WebSockets open", multiprocess_mode="livesum")
REPLIES = Gauge("chatsite_chat_replies_in_flight", "Chat replies being written", multiprocess_mode="livesum")
LEDGER = Gauge(
    "chatsite_ledger_unwritten_rows",
    "Usage rows queued but not yet written to the database",
    multiprocess_mode="livesum",
)

# name, help, label names, and the samples (label values, value) read at each scrape
Sample = tuple[tuple[str, ...], float]
Source = tuple[str, str, tuple[str, ...], Callable[[], Iterable[Sample]]]

_children: dict[tuple[Any, tuple[str, ...]], Any] = {}


def _child(metric: Any, *values: str) -> Any:
    """`metric.labels(*values)`, looked up once per label set (labels() costs microseconds per call)."""
    key = (metric, values)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*values)
    return found


def start() -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        pid = os.getpid()
        atexit.register(multiprocess.mark_process_dead, pid)


def request(exchange: Exchange, status: int, latency: float) -> None:
    row = exchange.row
    model = row.model.public_id if row is not None and row.model is not None else ""
    _child(REQUESTS, exchange.endpoint, model, str(status)).inc()
    _child(LATENCY, exchange.endpoint, model).observe(latency)
    if row is None:
        return
    if row.ttft_ms is not None:
        _child(TTFT, exchange.endpoint, model).observe(row.ttft_ms / 1000)
    if row.prompt_tokens:
        _child(TOKENS, model, "input").inc(row.prompt_tokens)
    if row.completion_tokens:
        _child(TOKENS, model, "output").inc(row.completion_tokens)
    cached = exchange.usage.cached_tokens if exchange.usage is not None else 0
    if cached:
        _child(TOKENS, model, "cached").inc(cached)
    if row.cost:
        _child(COST, model).inc(float(row.cost))


def attempt(deployment: Deployment) -> None:
    _child(ATTEMPTS, str(deployment.pk), deployment.provider.name).inc()


def attempt_failed(deployment: Deployment, status: int) -> None:
    _child(FAILURES, str(deployment.pk), deployment.provider.name, str(status)).inc()


def refused(code: str) -> None:
    _child(REFUSALS, code).inc()


def streams(delta: int) -> None:
    STREAMS.inc(delta)


def sockets(delta: int) -> None:
    SOCKETS.inc(delta)


def replies(delta: int) -> None:
    REPLIES.inc(delta)


def ledger_backlog(rows: int) -> None:
    LEDGER.set(rows)


class _ReadAtScrape(Collector):
    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, documentation, labels, read in self.sources:
            family = GaugeMetricFamily(name, documentation, labels=list(labels))
            try:
                samples = list(read())
            except Exception:  # the database or Redis away: the rest of the scrape still answers
                log.warning("could not read %s for /metrics", name, exc_info=True)
                continue
            for values, value in samples:
                family.add_metric(list(values), value)
            yield family


def exposition(sources: list[Source]) -> tuple[bytes, str]:
    """Every worker's metrics and the values of `sources`, in Prometheus's text format."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Everything())
    registry.register(_ReadAtScrape(sources))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Everything(Collector):
    """The process's own registry, for a single process without a multiprocess folder."""

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()
