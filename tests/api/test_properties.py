"""Whatever a client sends to the REST API, it answers 2xx or 4xx, every error in the one shape, and
logs no server error (Hypothesis throws arbitrary JSON, text, path ids and query strings, integers of
any size among them, at every route)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
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
# Every route, with {id} standing for a path id: one of alice's, any integer, or any text at all.
ROUTES = [
    "/api/conversations/",
    "/api/conversations/{id}/",
    "/api/conversations/{id}/messages/",
    "/api/conversations/{id}/export/",
    "/api/conversations/{id}/share/",
    "/api/keys/",
    "/api/keys/{id}/",
    "/api/keys/{id}/revoke/",
    "/api/projects/",
    "/api/projects/{id}/",
    "/api/shares/",
    "/api/shares/{id}/",
    "/api/usage/",
    "/api/usage/daily/",
]
QUERY_NAMES = ["q", "page", "page_size", "days", "project", "cursor", "branches", "format"]
# Query values: any text, and integers of any size (Python refuses to read over 4,300 digits).
query_values = st.one_of(
    hostile_text,
    st.integers().map(str),
    st.integers(min_value=4290, max_value=4400).map(lambda digits: "9" * digits),
)
path_ids = st.one_of(
    st.none(),  # alice's own
    st.integers().map(str),
    st.integers(min_value=18, max_value=5000).map(lambda digits: "9" * digits),
    hostile_text.map(lambda text: quote(text.encode("utf-8", "surrogatepass"), safe="")),
)
requests = st.tuples(
    st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT"]),
    st.sampled_from(ROUTES),
    bodies,
    st.dictionaries(st.sampled_from(QUERY_NAMES), query_values, max_size=3),
    path_ids,
)


def send(
    client: httpx.Client, alice: User, method: str, path: str, body: Any, query: dict[str, str], path_id: Any
) -> Any:
    conversation = Conversation.objects.filter(owner=alice).first() or Conversation.objects.create(owner=alice)
    # Query values as a hostile client may send them: percent-encoded bytes, lone surrogates too.
    search = "&".join(f"{name}={quote(value.encode('utf-8', 'surrogatepass'))}" for name, value in query.items())
    target = path.replace("{id}", str(conversation.pk) if path_id is None else path_id)
    return client.request(
        method, target + (f"?{search}" if search else ""), content=body, headers={"Content-Type": "application/json"}
    )


def check(response: Any, caplog: pytest.LogCaptureFixture) -> None:
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400 and not response.headers["content-type"].startswith("text/markdown"):
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests)
def test_any_request_gets_a_2xx_or_a_4xx_in_the_error_shape(
    as_alice: httpx.Client, alice: User, caplog: pytest.LogCaptureFixture, request: Any
) -> None:
    check(send(as_alice, alice, *request), caplog)


# The query integers each route reads, tried one by one with values of any size and text.
QUERY_INTEGERS = {
    "/api/conversations/": ["page", "page_size", "project"],
    "/api/conversations/{id}/messages/": ["page", "page_size"],
    "/api/keys/": ["page", "page_size"],
    "/api/projects/": ["page", "page_size"],
    "/api/shares/": ["page", "page_size"],
    "/api/usage/": ["days"],
    "/api/usage/daily/": ["days"],
}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), path=st.sampled_from(list(QUERY_INTEGERS)), value=query_values)
@example(data=None, path="/api/usage/", value="9" * 4301)  # the known instance: int() refuses 4,301 digits
@example(data=None, path="/api/usage/daily/", value="9" * 4301)
def test_any_query_integer_of_any_route_gets_a_2xx_or_a_4xx_in_the_error_shape(
    as_alice: httpx.Client,
    alice: User,
    caplog: pytest.LogCaptureFixture,
    data: st.DataObject | None,
    path: str,
    value: str,
) -> None:
    name = "days" if data is None else data.draw(st.sampled_from(QUERY_INTEGERS[path]))
    check(send(as_alice, alice, "GET", path, b"", {name: value}, None), caplog)
