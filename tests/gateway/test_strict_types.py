"""Each protocol's fields are validated as strictly as the protocol's own API does: `"stream": "yes"`,
`1` or `"true"` is no boolean and `"max_tokens": "16"` no integer (a 400 in the endpoint's error shape
naming the field), while genuine values, and integers where a number is expected, still work.

Before, such values passed as true (while the view streamed only on `is True`) and as 16.
"""

from __future__ import annotations

from typing import Any

import pytest

from catalogue.models import LanguageModel
from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway.conftest import MODEL, Gateway

pytestmark = pytest.mark.django_db(transaction=True)

TEXT, EMBED = "acme/text-strict", "acme/embed-strict"
HELLO = [{"role": "user", "content": "Say hello"}]
# The smallest valid body of each endpoint.
BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": MODEL, "messages": HELLO},
    "/v1/completions": {"model": TEXT, "prompt": "Say hello"},
    "/v1/responses": {"model": MODEL, "input": "Say hello"},
    "/v1/messages": {"model": MODEL, "max_tokens": 100, "messages": HELLO},
}
CAP = {
    "/v1/chat/completions": "max_tokens",
    "/v1/completions": "max_tokens",
    "/v1/responses": "max_output_tokens",
    "/v1/messages": "max_tokens",
}
NOT_BOOLEANS = ["yes", 1, "true", 0, "false"]


@pytest.fixture
def models(gateway: Gateway) -> None:
    common = {"provider": gateway.provider, "context_length": 2048, "max_output_tokens": 300}
    LanguageModel.objects.create(public_id=TEXT, upstream_model="fake-text", kind="text", **common)
    LanguageModel.objects.create(public_id=EMBED, upstream_model="fake-embed", kind="embedding", **common)


def refused(gateway: Gateway, path: str, body: dict[str, Any], param: str) -> str:
    """The 400's message, after checking it is in the endpoint's shape and names `param`."""
    answer = gateway.http.post(path, headers=gateway.headers(), json=body)
    assert answer.status_code == 400, answer.text
    if path == "/v1/messages":
        error = answer.json()
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
        assert error["error"]["message"].startswith(f"{param}: ")
        return str(error["error"]["message"])
    error = answer.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, "invalid_type", "invalid_request_error")
    return str(error["message"])


@pytest.mark.usefixtures("models")
@pytest.mark.parametrize("path", list(BODIES))
@pytest.mark.parametrize("value", NOT_BOOLEANS)
def test_a_stream_that_is_not_a_boolean_is_a_400_naming_it(
    gateway: Gateway, fake_upstream: FakeUpstream, path: str, value: object
) -> None:
    message = refused(gateway, path, {**BODIES[path], "stream": value}, "stream")
    if path == "/v1/messages":
        assert message == "stream: Input should be a valid boolean"
    else:
        got = "a string" if isinstance(value, str) else "an integer"
        assert message == f"Invalid type for 'stream': expected a boolean, but got {got} instead."
    assert fake_upstream.requests == []


@pytest.mark.usefixtures("models")
@pytest.mark.parametrize("path", list(BODIES))
def test_a_cap_given_as_a_string_is_a_400_naming_it(gateway: Gateway, fake_upstream: FakeUpstream, path: str) -> None:
    param = CAP[path]
    message = refused(gateway, path, {**BODIES[path], param: "16"}, param)
    if path != "/v1/messages":
        assert message == f"Invalid type for '{param}': expected an integer, but got a string instead."
    assert fake_upstream.requests == []


@pytest.mark.usefixtures("models")
@pytest.mark.parametrize(("field", "value"), [("dimensions", "16"), ("dimensions", 16.0), ("user", 5)])
def test_embeddings_fields_of_the_wrong_type_are_a_400_naming_them(
    gateway: Gateway, fake_upstream: FakeUpstream, field: str, value: object
) -> None:
    refused(gateway, "/v1/embeddings", {"model": EMBED, "input": "hello", field: value}, field)
    assert fake_upstream.requests == []


@pytest.mark.usefixtures("models")
@pytest.mark.parametrize("path", list(BODIES))
def test_genuine_values_still_work_and_reach_the_upstream_as_given(
    gateway: Gateway, fake_upstream: FakeUpstream, path: str
) -> None:
    fake_upstream.queue(Reply(content="Hello"))
    cap = CAP[path]
    body = {**BODIES[path], cap: 16, "temperature": 1, "stream": False}  # an integer is a number
    answer = gateway.http.post(path, headers=gateway.headers(), json=body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    sent = fake_upstream.last.body
    assert sent is not None and sent["temperature"] == 1 and sent.get("max_tokens", sent.get(cap)) == 16


@pytest.mark.usefixtures("models")
@pytest.mark.parametrize("path", list(BODIES))
def test_a_true_stream_streams(gateway: Gateway, fake_upstream: FakeUpstream, path: str) -> None:
    fake_upstream.queue(Reply(content="Hello", chunks=2))
    answer = gateway.http.post(path, headers=gateway.headers(), json={**BODIES[path], "stream": True})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert fake_upstream.last.body is not None and fake_upstream.last.body["stream"] is True


@pytest.mark.usefixtures("models")
def test_embeddings_with_genuine_values_still_work(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    body = {"model": EMBED, "input": "hello", "dimensions": 8, "encoding_format": "float"}
    answer = gateway.http.post("/v1/embeddings", headers=gateway.headers(), json=body)
    assert answer.status_code == 200, answer.text
    assert fake_upstream.last.body is not None and fake_upstream.last.body["dimensions"] == 8
