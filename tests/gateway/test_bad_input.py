"""Hostile bodies and paths at /v1 get a 400 in OpenAI's shape, never a 500 with a traceback.

Each of these answered 500 before: 100,000-level nested JSON (before auth too), a lone surrogate in a
message (it cannot be encoded to send upstream), a NUL in a model id or a response id (PostgreSQL
refuses it), `messages` that is no list at /v1/messages, a `limit` of 4,301 digits.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.fake_upstream import FakeUpstream
from tests.gateway.conftest import MODEL, Gateway

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"model": "x", "messages": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}"


def assert_openai_error(response: Any, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if param is not None:
        assert error["param"] == param
    return error


@pytest.fixture
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.WARNING)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
def test_deeply_nested_json_is_a_400_with_a_key_and_a_401_without(
    gateway: Gateway, no_errors_logged: None, body: bytes
) -> None:
    headers = {"Content-Type": "application/json"}
    anonymous = gateway.http.post("/v1/chat/completions", content=body, headers=headers)
    assert_openai_error(anonymous, 401)
    signed = gateway.http.post("/v1/chat/completions", content=body, headers={**headers, **gateway.headers()})
    error = assert_openai_error(signed, 400)
    assert error["code"] == "invalid_json" and "nested too deeply" in error["message"]


def test_json_a_little_too_deep_is_refused_and_a_tools_schema_is_not(
    gateway: Gateway, fake_upstream: FakeUpstream, no_errors_logged: None
) -> None:
    nested: Any = "leaf"
    for _ in range(70):
        nested = {"x": nested}
    messages = [{"role": "user", "content": "hi"}]
    too_deep = gateway.http.post(
        "/v1/chat/completions", headers=gateway.headers(), json={"model": MODEL, "messages": messages, "x": nested}
    )
    assert_openai_error(too_deep, 400)
    schema: Any = {"type": "string"}
    for _ in range(8):
        schema = {"type": "object", "properties": {"inner": schema}}
    tools = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
    ok = gateway.http.post(
        "/v1/chat/completions", headers=gateway.headers(), json={"model": MODEL, "messages": messages, "tools": tools}
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"model": "%s", "messages": [{"role": "user", "content": "a\\ud800b"}]}', "messages[0].content"),
        (b'{"model": "%s", "messages": [{"role": "user", "content": "a\\udfffb"}]}', "messages[0].content"),
        (b'{"model": "%s", "messages": [{"role": "user", "content": "a\\u0000b"}]}', "messages[0].content"),
        (b'{"model": "%s\\u0000", "messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "user": "\\ud800"}', "user"),
        (b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "\\u0000": 1}', "\x00"),
    ],
)
def test_text_that_cannot_be_sent_or_stored_is_a_400_naming_the_param(
    gateway: Gateway, fake_upstream: FakeUpstream, no_errors_logged: None, body: bytes, param: str
) -> None:
    response = gateway.http.post(
        "/v1/chat/completions",
        content=body.replace(b"%s", MODEL.encode()),
        headers={**gateway.headers(), "Content-Type": "application/json"},
    )
    error = assert_openai_error(response, 400, param)
    assert "NUL" in error["message"] or "surrogate" in error["message"]
    assert fake_upstream.requests == []


def test_an_escaped_surrogate_pair_is_ordinary_text(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    body = b'{"model": "%s", "messages": [{"role": "user", "content": "smile \\ud83d\\ude00"}]}'
    response = gateway.http.post(
        "/v1/chat/completions",
        content=body.replace(b"%s", MODEL.encode()),
        headers={**gateway.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert fake_upstream.last.body is not None
    assert fake_upstream.last.body["messages"][0]["content"] == "smile \U0001f600"


@pytest.mark.parametrize("path", ["/v1/models/%00", "/v1/models/acme%00chat", "/v1/models/%ED%A0%80"])
def test_a_model_id_with_a_nul_or_broken_utf8_is_a_4xx(gateway: Gateway, no_errors_logged: None, path: str) -> None:
    response = gateway.http.get(path, headers=gateway.headers())
    assert response.status_code in (400, 404)
    assert_openai_error(response, response.status_code)


@pytest.mark.parametrize("body", [b"NaN", b'{"model": NaN}', b'{"model": Infinity}', b'{"a": 1e400}'])
def test_non_json_numbers_are_refused(gateway: Gateway, no_errors_logged: None, body: bytes) -> None:
    response = gateway.http.post(
        "/v1/chat/completions", content=body, headers={**gateway.headers(), "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert_openai_error(response, 400)


def test_a_number_too_large_for_a_float_never_goes_upstream(
    gateway: Gateway, fake_upstream: FakeUpstream, no_errors_logged: None
) -> None:
    body = b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "x_extension": 1e400}'
    response = gateway.http.post(
        "/v1/chat/completions",
        content=body.replace(b"%s", MODEL.encode()),
        headers={**gateway.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert_openai_error(response, 400)
    assert fake_upstream.requests == []


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
@pytest.mark.parametrize("messages", [5, True, 1.5, "hello", {"role": "user"}, None])
def test_messages_that_are_no_list_are_an_anthropic_400_naming_them(
    gateway: Gateway, fake_upstream: FakeUpstream, no_errors_logged: None, path: str, messages: object
) -> None:
    body = {"model": MODEL, "max_tokens": 16, "messages": messages}
    response = gateway.http.post(path, json=body, headers={"x-api-key": gateway.secret})
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith("messages: ")
    assert fake_upstream.requests == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/responses/%00"),
        ("DELETE", "/v1/responses/%00"),
        ("GET", "/v1/responses/%00/input_items"),
        ("GET", "/v1/responses/resp_%00x/input_items"),
        ("GET", "/v1/models/acme%00chat"),
    ],
)
def test_a_path_id_no_row_can_have_is_a_400_naming_it(
    gateway: Gateway, no_errors_logged: None, method: str, path: str
) -> None:
    response = gateway.http.request(method, path, headers=gateway.headers())
    param = "model" if path.startswith("/v1/models/") else "response_id"
    error = assert_openai_error(response, 400, param)
    assert error["code"] == "invalid_value" and error["message"].startswith(f"Invalid {param}: it contains")


@pytest.mark.parametrize("limit", ["9" * 4301, "0", "101", "-1", "1.5", "", " 5"])
def test_an_input_items_limit_out_of_bounds_is_a_400_naming_it(
    gateway: Gateway, no_errors_logged: None, limit: str
) -> None:
    response = gateway.http.get(
        "/v1/responses/resp_none/input_items", params={"limit": limit}, headers=gateway.headers()
    )
    assert "from 1 to 100" in assert_openai_error(response, 400, "limit")["message"]
