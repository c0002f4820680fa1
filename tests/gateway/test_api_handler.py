"""The lean /v1 handler (gateway.asgi): same answers, without Django's thread-hopping middleware."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re

import httpx
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from core.request_id import RequestIdFilter, new_request_id
from gateway.asgi import api_middleware
from tests.gateway.conftest import MODEL, Gateway
from tests.openai_schema import validate


def test_v1_answers_carry_the_security_headers_and_no_cookies(gateway: Gateway) -> None:
    response = gateway.http.get(gateway.base_url + "/models", headers=gateway.headers())
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "set-cookie" not in response.headers
    page = gateway.http.get(gateway.url + "/accounts/login/")
    assert page.headers["x-frame-options"] == "DENY", "the rest of the site keeps Django's middleware"


def test_a_disallowed_host_is_refused_in_the_error_shape(gateway: Gateway) -> None:
    response = gateway.http.get(gateway.base_url + "/models", headers={**gateway.headers(), "Host": "evil.example"})
    assert response.status_code == 400
    validate(response.json(), "ErrorResponse")


def test_an_unexpected_failure_still_answers_in_the_error_shape() -> None:
    async def broken_view(request: HttpRequest) -> HttpResponse:
        raise RuntimeError("a bug")

    request = RequestFactory().get("/v1/models", HTTP_HOST="127.0.0.1")
    response = asyncio.run(api_middleware(broken_view)(request))
    assert response.status_code == 500
    body = response.content.decode()
    assert "a bug" not in body
    validate(httpx.Response(500, content=response.content).json(), "ErrorResponse")


def test_every_path_under_v1_even_without_its_slash_answers_in_the_error_shape(gateway: Gateway) -> None:
    for method, path in (("POST", "/v1chat/completions"), ("GET", "/v1"), ("GET", "/v1models"), ("GET", "/v1/nope")):
        response = gateway.http.request(method, gateway.url + path, headers=gateway.headers(), json={})
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/json"
        validate(response.json(), "ErrorResponse")
    slashless = gateway.http.post(gateway.url + "/v1chat/completions", headers=gateway.headers(), json={})
    assert "trailing slash" in slashless.json()["error"]["message"]


def test_every_v1_answer_carries_its_own_request_id(gateway: Gateway) -> None:
    answers = [
        gateway.http.get(gateway.base_url + "/models", headers=gateway.headers()),
        gateway.http.get(gateway.base_url + "/models"),  # 401
        gateway.http.get(gateway.base_url + "/chat/completions", headers=gateway.headers()),  # 405
        gateway.http.get(gateway.url + "/v1nowhere", headers=gateway.headers()),  # 404
    ]
    ids = [answer.headers.get("x-request-id", "") for answer in answers]
    assert all(re.fullmatch(r"req_[0-9a-f]{32}", value) for value in ids), ids
    assert len(set(ids)) == len(ids)
    reply = gateway.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert re.fullmatch(r"req_[0-9a-f]{32}", reply._request_id or "")
    page = gateway.http.get(gateway.url + "/accounts/login/")
    assert "x-request-id" not in page.headers, "only the API numbers its answers"


def test_log_lines_written_while_serving_a_request_carry_its_id() -> None:
    record = logging.LogRecord("gateway", logging.INFO, __file__, 1, "served", None, None)
    context = contextvars.copy_context()
    request_id = context.run(new_request_id)
    context.run(RequestIdFilter().filter, record)
    assert record.request_id == f" [{request_id}]"  # type: ignore[attr-defined]
    RequestIdFilter().filter(record)  # outside any request
    assert record.request_id == ""  # type: ignore[attr-defined]
