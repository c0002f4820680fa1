"""Every error of the REST API has the one shape: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

from typing import Any

import httpx
from django.core.cache import cache

from accounts.models import User
from core.clock import ManualClock
from tests.inprocess import InProcessApp
from tests.signed_in import sign_in


def error(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return dict(body["error"])


def test_an_unknown_path_under_api_is_a_404_in_the_shape(app: InProcessApp, alice: User) -> None:
    for path in ("/api/nothing-here/", "/api/conversations", "/api/conversations/abc/"):
        response = sign_in(app.client(), alice).get(path)
        assert response.status_code == 404, path
        assert error(response)["type"] == "not_found_error"


def test_a_method_not_allowed_is_a_405_in_the_shape(app: InProcessApp, alice: User) -> None:
    client = sign_in(app.client(), alice)
    for method, path in (("PUT", "/api/conversations/1/"), ("DELETE", "/api/usage/"), ("POST", "/api/usage/daily/")):
        response = client.request(method, path, json={})
        assert response.status_code in (404, 405), (method, path)
        if response.status_code == 405:
            assert error(response)["code"] == "method_not_allowed"
    assert client.request("PUT", "/api/conversations/", json={}).status_code == 405


def test_an_unsupported_media_type_is_a_415_in_the_shape(app: InProcessApp, alice: User) -> None:
    response = sign_in(app.client(), alice).post(
        "/api/conversations/", content="title=x", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert error(response)["code"] == "unsupported_media_type"


def test_too_many_requests_is_a_429_in_the_shape_then_recovers(
    app: InProcessApp, alice: User, clock: ManualClock, settings: Any
) -> None:
    settings.API_REQUESTS_PER_MINUTE = 3
    cache.clear()
    client = sign_in(app.client(), alice)
    assert [client.get("/api/usage/").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/api/conversations/")
    assert refused.status_code == 429
    assert error(refused)["type"] == "rate_limit_error"
    assert refused.headers["Retry-After"] == "60"
    clock.advance(60)
    assert client.get("/api/usage/").status_code == 200


def test_the_root_lists_the_resources(app: InProcessApp) -> None:
    root = app.client().get("/api/").json()
    assert {"conversations", "keys"} <= set(root)
