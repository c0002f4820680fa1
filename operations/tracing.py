"""OpenTelemetry traces, sent over OTLP/HTTP (protobuf) to OTEL_EXPORTER_OTLP_ENDPOINT.

A server span per /v1 request and an internal span per chat reply, each with a client span per upstream
attempt as its child. Attributes follow OpenTelemetry's semantic conventions for generative AI
(gen_ai.*) and HTTP; `chatsite.request_id` is the request id our answers and log lines carry, the link
from a trace to the logs. The exporter reads the standard OTEL_EXPORTER_OTLP_* variables (endpoint,
headers, timeout); spans leave in batches from a thread of their own, never on the request path.

Imported only when OTEL_EXPORTER_OTLP_ENDPOINT is set (operations.observe).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from core.request_id import current_request_id

if TYPE_CHECKING:
    from catalogue.models import Deployment, LanguageModel
    from operations.observe import Exchange
    from usage.tokens import Usage

_tracer: trace.Tracer | None = None

# gen_ai.operation.name of each endpoint (https://opentelemetry.io/docs/specs/semconv/gen-ai/)
OPERATIONS = {
    "/v1/chat/completions": "chat",
    "/v1/messages": "chat",
    "/v1/responses": "chat",
    "/v1/completions": "text_completion",
    "/v1/embeddings": "embeddings",
    "chat": "chat",
}


def start() -> None:
    global _tracer
    provider = TracerProvider(resource=Resource.create({"service.name": settings.OTEL_SERVICE_NAME}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _tracer = provider.get_tracer("chatsite")


def _start(name: str, kind: SpanKind, attributes: dict[str, Any]) -> Span:
    assert _tracer is not None
    return _tracer.start_span(name, kind=kind, attributes=attributes)


@contextlib.contextmanager
def current(span: Span) -> Iterator[None]:
    """`span` is the parent of the spans started inside (tasks created inside inherit it)."""
    token = context.attach(trace.set_span_in_context(span))
    try:
        yield
    finally:
        context.detach(token)


def request_span(scope: dict[str, Any]) -> Span:
    from operations.observe import endpoint_of

    method, path = scope.get("method", ""), scope.get("path", "")
    route = endpoint_of(path)
    client = scope.get("client") or ("", 0)
    attributes = {
        "http.request.method": method,
        "http.route": route,
        "url.path": path,
        "client.address": client[0],
        "chatsite.request_id": current_request_id.get(),
    }
    operation = OPERATIONS.get(route)
    if operation is not None:
        attributes["gen_ai.operation.name"] = operation
    return _start(f"{method} {route}", SpanKind.SERVER, attributes)


def end_request(exchange: Exchange, status: int) -> None:
    span = exchange.span
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
        span.set_attribute("error.type", str(status))
    span.end()


def describe_call(row: Any, usage: Usage, finish_reasons: tuple[str, ...]) -> None:
    """What a settled call says, on the span around it (its request's or chat reply's)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes: dict[str, Any] = {
        "gen_ai.request.model": row.model_public_id,
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "chatsite.user_id": row.user.pk,
        "chatsite.attempts": row.attempts,
        "chatsite.usage_estimated": usage.estimated,
        "chatsite.status": row.status,
    }
    if usage.cached_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_tokens
    if finish_reasons:
        attributes["gen_ai.response.finish_reasons"] = list(finish_reasons)
    if row.deployment is not None:
        attributes["gen_ai.response.model"] = row.deployment.upstream_model
        attributes["gen_ai.provider.name"] = row.deployment.provider.name
        attributes["gen_ai.system"] = row.deployment.provider.name
        attributes["chatsite.deployment_id"] = row.deployment.pk
    if row.error_code:
        attributes["error.type"] = row.error_code
    span.set_attributes(attributes)


# gen_ai.operation.name of each kind of model
KINDS = {"chat": "chat", "text": "text_completion", "embedding": "embeddings"}


def attempt_span(model: LanguageModel, deployment: Deployment) -> Span:
    provider = deployment.provider
    operation = KINDS.get(model.kind, model.kind)
    return _start(
        f"{operation} {deployment.upstream_model}",
        SpanKind.CLIENT,
        {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": deployment.upstream_model,
            "gen_ai.provider.name": provider.name,
            "gen_ai.system": provider.name,
            "server.address": urlsplit(provider.base_url).hostname or "",
            "chatsite.deployment_id": deployment.pk,
            "chatsite.request_id": current_request_id.get(),
        },
    )


def failed(span: Span, status: int, code: str | None) -> None:
    span.set_status(Status(StatusCode.ERROR))
    span.set_attribute("error.type", code or str(status))
    span.set_attribute("http.response.status_code", status)


def reply_span(message_id: int) -> tuple[Span, Any]:
    span = _start("chat reply", SpanKind.INTERNAL, {"gen_ai.operation.name": "chat", "chatsite.message_id": message_id})
    return span, context.attach(trace.set_span_in_context(span))


def end(span: Span, token: Any) -> None:
    if token is not None:
        context.detach(token)
    span.end()
