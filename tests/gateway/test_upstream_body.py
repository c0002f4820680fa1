"""What a /v1 client sends is not what steers our upstream: the end user is ours (hashed), and the
fields other gateways read as routing (where to send the request, with which key) never go on.

The fake upstream records each request's body as it arrived, streamed and not.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.fake_upstream import FakeUpstream
from tests.gateway.conftest import MODEL, Gateway

MESSAGES: Any = [{"role": "user", "content": "Say hello"}]
STEERING = {
    "api_base": "http://127.0.0.1:9/v1",
    "base_url": "http://127.0.0.1:9/v1",
    "api_key": "sk-attacker-chosen-key-0000",
    "extra_headers": {"Authorization": "Bearer sk-attacker"},
    "api_version": "2020-01-01",
    "custom_llm_provider": "other",
}


@pytest.mark.parametrize("stream", [False, True])
def test_the_clients_user_is_replaced_by_ours_hashed(
    gateway: Gateway, fake_upstream: FakeUpstream, stream: bool
) -> None:
    answer = gateway.http.post(
        "/v1/chat/completions",
        headers=gateway.headers(),
        json={"model": MODEL, "messages": MESSAGES, "user": "victim@example.com", "stream": stream},
    )
    assert answer.status_code == 200
    sent = fake_upstream.last.body
    assert sent is not None
    assert sent["user"] != "victim@example.com"
    assert re.fullmatch(r"user-[0-9a-f]{32}", sent["user"])  # a digest, not the id itself
    assert "victim" not in str(sent)


def test_the_hashed_user_is_stable_per_user_and_differs_between_users(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    from accounts.keys import create_key
    from accounts.models import User

    bob = User.objects.create_user("bob", "bob@example.com", "correct-horse-battery-staple")
    _, bob_secret = create_key(bob, "bob")
    seen = []
    for secret in (gateway.secret, gateway.secret, bob_secret):
        body = {"model": MODEL, "messages": MESSAGES, "user": "same-client-user", "safety_identifier": "x"}
        assert gateway.http.post("/v1/chat/completions", headers=gateway.headers(secret), json=body).status_code == 200
        sent = fake_upstream.last.body
        assert sent is not None and sent["safety_identifier"] == sent["user"]
        seen.append(sent["user"])
    assert seen[0] == seen[1] != seen[2]


@pytest.mark.parametrize("stream", [False, True])
def test_routing_fields_never_reach_the_upstream(gateway: Gateway, fake_upstream: FakeUpstream, stream: bool) -> None:
    body = {"model": MODEL, "messages": MESSAGES, "stream": stream, "temperature": 0.5, **STEERING}
    answer = gateway.http.post("/v1/chat/completions", headers=gateway.headers(), json=body)
    assert answer.status_code == 200
    request = fake_upstream.last
    assert request.body is not None
    assert not set(STEERING) & set(request.body)
    assert request.body["temperature"] == 0.5  # other fields still pass through
    assert request.authorization == "Bearer sk-upstream-secret-0123456789"
    assert "attacker" not in str(request.headers)


def test_a_body_without_a_user_gets_none_added(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    assert fake_upstream.last.body is not None and "user" not in fake_upstream.last.body
