"""Traces reach an OTLP/HTTP receiver: a span per request and per chat reply, a child per upstream attempt."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from websockets.sync.client import connect

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import Deployment, LanguageModel, Provider
from conversations.models import Conversation
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer, free_port
from tests.operations.helpers import post_chat, start_workers

pytestmark = pytest.mark.timeout(120)

MODEL = "acme/traced"


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    status: int
    attributes: dict[str, Any]


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind)


class Receiver:
    """An OTLP/HTTP trace receiver on loopback: decodes each ExportTraceServiceRequest into Spans."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                found = [
                    Span(
                        span.name,
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                        span.kind,
                        span.status.code,
                        {a.key: _value(a.value) for a in span.attributes},
                    )
                    for resource in request.resource_spans
                    for scope in resource.scope_spans
                    for span in scope.spans
                ]
                receiver.paths.append(self.path)
                receiver.spans.extend(found)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, name: str, seconds: float = 20) -> Span:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for span in list(self.spans):
                if span.name == name:
                    return span
            time.sleep(0.05)
        raise AssertionError(f"no span {name!r} among {[s.name for s in self.spans]}")

    def children_of(self, parent: Span) -> list[Span]:
        return [s for s in self.spans if s.parent_span_id == parent.span_id]


@pytest.fixture(scope="module")
def traced(django_db_setup: None, django_db_blocker: Any) -> Iterator[tuple[LiveServer, Receiver]]:
    receiver = Receiver()
    # OTEL_BSP_SCHEDULE_DELAY: milliseconds between batches
    [server] = start_workers(1, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "50"})
    yield server, receiver
    server.stop()
    receiver.server.shutdown()


@pytest.fixture
def model(fake_upstream: FakeUpstream, transactional_db: None) -> LanguageModel:
    """A model whose first deployment cannot be reached and whose second answers."""
    dead = Provider.objects.create(name="dead", base_url=f"http://127.0.0.1:{free_port()}/v1", connect_timeout=2)
    alive = Provider.objects.create(name="alive", base_url=fake_upstream.base_url, read_timeout=10)
    model = LanguageModel.objects.create(public_id=MODEL, provider=dead, upstream_model="dead-model")
    Deployment.objects.create(model=model, provider=alive, upstream_model="alive-model", priority=1)
    return model


def test_a_request_span_has_a_child_per_upstream_attempt_with_gen_ai_attributes(
    traced: tuple[LiveServer, Receiver], model: LanguageModel, alice: User, fake_upstream: FakeUpstream
) -> None:
    server, receiver = traced
    fake_upstream.default = Reply(content="hello there", finish_reason="length")
    secret = create_key(alice, "traces")[1]
    answer = post_chat(server, secret, MODEL)
    assert answer.status_code == 200, answer.text

    request = receiver.wait_for("POST /v1/chat/completions")
    assert request.kind == 2  # SERVER
    assert receiver.paths[0] == "/v1/traces"
    attributes = request.attributes
    assert attributes["chatsite.request_id"] == answer.headers["x-request-id"]
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.provider.name"] == "alive"
    assert attributes["gen_ai.response.model"] == "alive-model"
    assert attributes["gen_ai.usage.input_tokens"] == answer.json()["usage"]["prompt_tokens"]
    assert attributes["gen_ai.usage.output_tokens"] == answer.json()["usage"]["completion_tokens"]
    assert attributes["gen_ai.response.finish_reasons"] == ["length"]
    assert attributes["http.response.status_code"] == 200
    assert attributes["chatsite.user_id"] == alice.pk

    deadline = time.monotonic() + 10
    while len(receiver.children_of(request)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    first, second = sorted(receiver.children_of(request), key=lambda s: s.attributes["gen_ai.request.model"])
    assert (first.name, second.name) == ("chat alive-model", "chat dead-model")
    assert {first.trace_id, second.trace_id} == {request.trace_id}
    assert first.kind == second.kind == 3  # CLIENT
    assert first.attributes["gen_ai.provider.name"] == "alive"
    assert first.status != 2
    assert second.attributes["gen_ai.provider.name"] == "dead"
    assert second.status == 2  # ERROR
    assert second.attributes["error.type"]


def test_a_chat_reply_has_a_span_of_its_own_with_its_attempt_as_child(
    traced: tuple[LiveServer, Receiver], model: LanguageModel, alice: User, fake_upstream: FakeUpstream
) -> None:
    server, receiver = traced
    Deployment.objects.filter(model=model, provider__name="dead").update(enabled=False)
    fake_upstream.default = Reply(content="a reply")
    conversation = Conversation.objects.create(owner=alice, model=model)
    client = Client()
    client.force_login(alice)
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    with connect(
        f"{server.ws_url}/ws/conversations/{conversation.pk}/",
        additional_headers={"Cookie": cookie, "Origin": server.url},
        open_timeout=10,
    ) as socket:
        socket.send(json.dumps({"type": "send", "content": "Hello"}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            frame = json.loads(socket.recv(timeout=30))
            message = frame.get("message") or {}
            if frame["type"] == "message" and message.get("role") == "assistant" and message["status"] != "streaming":
                break

    reply = receiver.wait_for("chat reply")
    assert reply.attributes["gen_ai.operation.name"] == "chat"
    assert reply.attributes["gen_ai.request.model"] == MODEL
    assert reply.attributes["gen_ai.usage.output_tokens"] > 0
    deadline = time.monotonic() + 10
    while not receiver.children_of(reply) and time.monotonic() < deadline:
        time.sleep(0.05)
    [attempt] = receiver.children_of(reply)
    assert attempt.name == "chat alive-model"
