"""Property: whatever JSON or text the chat's JSON endpoints get, they answer 2xx or a 4xx with an
`error` object, and nothing is stored that PostgreSQL refused (the test client re-raises any 500)."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from conversations.models import Conversation

pytestmark = pytest.mark.django_db

API = "/chat/api/conversations/"
hostile_text = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(["\x00", "\ud800", "\udfff"])), max_size=30)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), hostile_text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)),
    max_leaves=12,
)
inputs = st.one_of(
    st.fixed_dictionaries({}, optional={"title": json_values, "model": json_values, "system_prompt": json_values}),
    json_values,
)
bodies = st.one_of(inputs.map(lambda value: json.dumps(value)), st.binary(max_size=64))
PROPERTY = settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def check(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code < 500
    if response.status_code >= 400:
        assert isinstance(response.json()["error"]["message"], str)


@pytest.fixture
def as_alice(client: Client, alice: User) -> Client:
    client.force_login(alice)
    return client


@PROPERTY
@given(body=bodies, method=st.sampled_from(["post", "patch"]))
def test_any_body_is_answered_without_a_server_error(
    as_alice: Client, alice: User, body: str | bytes, method: str
) -> None:
    conversation = Conversation.objects.filter(owner=alice).first() or Conversation.objects.create(owner=alice)
    url = API if method == "post" else f"{API}{conversation.pk}/"
    check(getattr(as_alice, method)(url, body, content_type="application/json"))


@PROPERTY
@given(query=hostile_text)
def test_any_search_is_answered_without_a_server_error(as_alice: Client, query: str) -> None:
    check(as_alice.get(API, {"q": query}))
    assert as_alice.get("/", {"q": query}).status_code == 200
