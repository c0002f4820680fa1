"""The lean /v1 handler (gateway.asgi): same answers, without Django's thread-hopping middleware."""

from __future__ import annotations

import asyncio

import httpx
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from gateway.asgi import api_middleware
from tests.gateway.conftest import Gateway
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
