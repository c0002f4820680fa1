"""Whatever a client sends to the REST API, it answers 2xx or 4xx, every error in the one shape, and
logs no server error (Hypothesis throws arbitrary JSON, text and query strings at it)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from conversations.models import Conversation

hostile_text = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(["\x00", "\ud800", "\udfff"])), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=10,
)
conversation_like = st.fixed_dictionaries(
    {}, optional={"title": json_values, "model": json_values, "system_prompt": json_values}
)
bodies = st.one_of(
    conversation_like.map(json.dumps),
    json_values.map(json.dumps),
    hostile_text.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.binary(max_size=40),
)
requests = st.tuples(
    st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT"]),
    st.sampled_from(
        [
            "/api/conversations/",
            "/api/conversations/{id}/",
            "/api/conversations/{id}/messages/",
            "/api/keys/",
            "/api/usage/",
            "/api/usage/daily/",
        ]
    ),
    bodies,
    st.dictionaries(st.sampled_from(["q", "page", "page_size", "days"]), hostile_text, max_size=2),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests)
def test_any_request_gets_a_2xx_or_a_4xx_in_the_error_shape(
    as_alice: httpx.Client, alice: User, caplog: pytest.LogCaptureFixture, request: Any
) -> None:
    method, path, body, query = request
    conversation = Conversation.objects.filter(owner=alice).first() or Conversation.objects.create(owner=alice)
    # Query values as a hostile client may send them: percent-encoded bytes, lone surrogates too.
    search = "&".join(f"{name}={quote(value.encode('utf-8', 'surrogatepass'))}" for name, value in query.items())
    response = as_alice.request(
        method,
        path.replace("{id}", str(conversation.pk)) + (f"?{search}" if search else ""),
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
