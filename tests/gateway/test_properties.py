"""Property: whatever JSON or text a client throws at /v1, the answer is 2xx or a 4xx in OpenAI's
error shape, and nothing is logged at ERROR (no traceback, no 500)."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
