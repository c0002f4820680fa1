"""Property: whatever JSON or text a client throws at /v1 (any body, any value in any field of every
wire protocol's body, any path id, any query integer), the answer is 2xx or a 4xx in the endpoint's
error shape, and nothing is logged at ERROR (no traceback, no 500)."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from gateway.anthropic_messages.protocol import CountTokensRequest, MessagesRequest
from gateway.chat_completions.protocol import ChatCompletionRequest
from gateway.embeddings.protocol import CreateEmbeddingRequest
from gateway.gemini_api.protocol import CountTokensRequest as GeminiCountTokensRequest
from gateway.gemini_api.protocol import GenerateContentRequest
from gateway.responses_api.protocol import CreateResponse
from gateway.text_completions.protocol import CreateCompletionRequest
from tests.gateway.conftest import MODEL, Gateway

# Text as hostile as JSON can carry: any code point, NUL and lone surrogates more often than chance.
hostile_text = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(["\x00", "\ud800", "\udfff"])), max_size=30)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), hostile_text, st.sampled_from([MODEL, "user", "assistant"])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)),
    max_leaves=12,
)
FIELDS = ["max_tokens", "temperature", "stop", "tools", "tool_choice", "response_format", "user", "seed", "logit_bias"]
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.one_of(st.sampled_from(["system", "user", "assistant", "tool"]), hostile_text)},
        optional={"content": st.one_of(hostile_text, json_values), "name": hostile_text},
    ),
    max_size=3,
)
chat_bodies = st.fixed_dictionaries(
    {"model": st.one_of(st.just(MODEL), hostile_text), "messages": st.one_of(messages, json_values)},
    optional={"stream": st.booleans(), **{name: json_values for name in FIELDS}},
)
bodies = st.one_of(
    chat_bodies.map(lambda body: json.dumps(body).encode()),  # escapes lone surrogates as JSON allows
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=64),
)

PROPERTY = settings(
    max_examples=120,
    deadline=None,  # never a timing assertion
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def check(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert isinstance(error["message"], str) and error["message"]


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    caplog.set_level(logging.WARNING)
    return caplog.records


@PROPERTY
@given(body=bodies, signed=st.booleans())
def test_any_body_at_chat_completions_is_answered_without_a_server_error(
    gateway: Gateway, errors: list[logging.LogRecord], body: bytes, signed: bool
) -> None:
    headers = {"Content-Type": "application/json", **(gateway.headers() if signed else {})}
    response = gateway.http.post("/v1/chat/completions", content=body, headers=headers)
    check(response)
    assert not [r for r in errors if r.levelno >= logging.ERROR]


@PROPERTY
@given(model_id=hostile_text)
def test_any_model_id_in_the_path_is_answered_without_a_server_error(
    gateway: Gateway, errors: list[logging.LogRecord], model_id: str
) -> None:
    path = "/v1/models/" + quote(model_id.encode("utf-8", "surrogatepass"), safe="")
    response = gateway.http.get(path, headers=gateway.headers())
    check(response)
    assert not [r for r in errors if r.levelno >= logging.ERROR]


# Each wire protocol's body: a valid one, with arbitrary JSON in any of its top-level fields (every
# field its model knows, and one it does not). Types are checked before anything walks the body.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
    "/v1/completions": {"model": MODEL, "prompt": "hi"},
    "/v1/embeddings": {"model": MODEL, "input": "hi"},
    "/v1/responses": {"model": MODEL, "input": "hi"},
    "/v1/messages": {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
    "/v1/messages/count_tokens": {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
    f"/v1beta/models/{MODEL}:generateContent": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    f"/v1beta/models/{MODEL}:countTokens": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
}
MODELS: dict[str, type[BaseModel]] = {
    "/v1/chat/completions": ChatCompletionRequest,
    "/v1/completions": CreateCompletionRequest,
    "/v1/embeddings": CreateEmbeddingRequest,
    "/v1/responses": CreateResponse,
    "/v1/messages": MessagesRequest,
    "/v1/messages/count_tokens": CountTokensRequest,
    f"/v1beta/models/{MODEL}:generateContent": GenerateContentRequest,
    f"/v1beta/models/{MODEL}:countTokens": GeminiCountTokensRequest,
}


def field_values(path: str) -> st.SearchStrategy[dict[str, Any]]:
    """Arbitrary JSON in one to three of the body's top-level fields (or one the model does not know)."""
    fields = [*(field.alias or name for name, field in MODELS[path].model_fields.items()), "unknown_field"]
    return st.dictionaries(st.sampled_from(fields), json_values, min_size=1, max_size=3)


protocol_requests = st.sampled_from(list(VALID_BODIES)).flatmap(
    lambda path: st.tuples(st.just(path), field_values(path))
)


@settings(PROPERTY, max_examples=240)
@given(request=protocol_requests)
# The known instances: `messages` a number, walked before its type was checked.
@example(request=("/v1/messages", {"messages": 5}))
@example(request=("/v1/messages/count_tokens", {"messages": 1.5}))
def test_any_value_in_any_field_of_any_protocol_is_answered_without_a_server_error(
    gateway: Gateway, errors: list[logging.LogRecord], request: tuple[str, dict[str, Any]]
) -> None:
    path, changed = request
    headers = {"Content-Type": "application/json", **gateway.headers()}
    response = gateway.http.post(path, content=json.dumps({**VALID_BODIES[path], **changed}).encode(), headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()
        if path.startswith("/v1/messages"):
            assert error["type"] == "error" and set(error["error"]) == {"type", "message"}
        elif path.startswith("/v1beta/"):
            assert set(error) == {"error"} and set(error["error"]) == {"code", "message", "status"}
        else:
            check(response)
    assert not [r for r in errors if r.levelno >= logging.ERROR]


# Ids as hostile as a path can carry: NUL and lone surrogates (percent-encoded) often, not by chance.
path_ids = st.one_of(
    hostile_text,
    st.text(alphabet=st.sampled_from(["\x00", "\ud800", "a", "_", "/", "é", "0"]), min_size=1, max_size=8),
    st.integers().map(str),
)
limits = st.one_of(
    st.none(), hostile_text, st.integers().map(str), st.integers(4290, 4400).map(lambda digits: "9" * digits)
)


@PROPERTY
@given(
    method=st.sampled_from(["GET", "DELETE"]),
    route=st.sampled_from(["/v1/responses/{id}", "/v1/responses/{id}/input_items", "/v1/models/{id}"]),
    path_id=path_ids,
    limit=limits,
)
@example(method="GET", route="/v1/responses/{id}", path_id="\x00", limit=None)
@example(method="DELETE", route="/v1/responses/{id}", path_id="\x00", limit=None)
@example(method="GET", route="/v1/responses/{id}/input_items", path_id="\x00", limit="9" * 4301)
def test_any_path_id_or_query_integer_is_answered_without_a_server_error(
    gateway: Gateway, errors: list[logging.LogRecord], method: str, route: str, path_id: str, limit: str | None
) -> None:
    path = route.replace("{id}", quote(path_id.encode("utf-8", "surrogatepass"), safe=""))
    query = "" if limit is None else "?limit=" + quote(limit.encode("utf-8", "surrogatepass"), safe="")
    response = gateway.http.request(method, path + query, headers=gateway.headers())
    check(response)
    assert not [r for r in errors if r.levelno >= logging.ERROR]
