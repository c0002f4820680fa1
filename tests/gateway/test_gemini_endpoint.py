"""Gemini's API (/v1beta) through the official google-genai SDK, for a model whose upstream speaks
OpenAI's format (the fake upstream): requests are translated, run through the chat pipeline (scope,
limits, routing, ledger) and translated back. Unhappy paths answer in Google's error shape.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types

from accounts.keys import create_key
from gateway.asgi import _key_out_of_query
from gateway.wire import GEMINI_SSE, sse
from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.gateway.conftest import MODEL, UPSTREAM_MODEL, Gateway, wait_for_usage
from usage.models import Limit

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="The weather in a city",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}, required=["city"]
    ),
)


def sdk(gateway: Gateway, secret: str | None = None) -> genai.Client:
    """The SDK as its users set it up for another endpoint: http_options' base_url (and our client in process)."""
    options = types.HttpOptions(base_url=gateway.url, httpx_client=gateway.http, timeout=60_000)
    return genai.Client(api_key=secret or gateway.secret, http_options=options)


def google_error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "status"}, body
    assert body["error"]["code"] == response.status_code
    error: dict[str, Any] = body["error"]
    return error


def test_the_sdk_generates_content_through_the_chat_pipeline(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="Hello there"))
    answer = sdk(gateway).models.generate_content(
        model=MODEL,
        contents="Say hello",
        config=types.GenerateContentConfig(
            system_instruction="Be brief.", temperature=0.5, top_p=0.9, max_output_tokens=100, stop_sequences=["END"]
        ),
    )
    assert answer.text == "Hello there"
    assert answer.candidates and answer.candidates[0].finish_reason == types.FinishReason.STOP
    assert answer.model_version == MODEL
    assert answer.usage_metadata and answer.usage_metadata.prompt_token_count
    assert answer.usage_metadata.total_token_count == (
        answer.usage_metadata.prompt_token_count + (answer.usage_metadata.candidates_token_count or 0)
    )
    sent = fake_upstream.last.body
    assert sent is not None and sent["model"] == UPSTREAM_MODEL
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"], sent["stop"]) == (0.5, 0.9, 100, ["END"])
    [row] = wait_for_usage(1)
    assert row.api_key_id == gateway.key.pk and row.status == 200 and row.model_public_id == MODEL


def test_the_sdk_streams_content(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="one two three"))
    chunks = list(sdk(gateway).models.generate_content_stream(model=MODEL, contents="Count"))
    assert "".join(chunk.text or "" for chunk in chunks) == "one two three"
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata and last.usage_metadata.total_token_count
    request = fake_upstream.last
    assert request.body is not None and request.body["stream"] is True
    [row] = wait_for_usage(1)
    assert row.stream and row.status == 200 and row.model_public_id == MODEL


def test_the_sdk_counts_tokens(gateway: Gateway) -> None:
    counted = sdk(gateway).models.count_tokens(model=MODEL, contents="How many tokens is this sentence?")
    assert counted.total_tokens and counted.total_tokens > 5


def test_a_function_call_round_trip(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="", tool_calls=[ToolCall("get_weather", '{"city": "Paris"}', id="call_abc")]))
    client = sdk(gateway)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="ANY")),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    question = types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])
    first = client.models.generate_content(model=MODEL, contents=[question], config=config)
    [call] = first.function_calls or []
    assert (call.name, call.args, call.id) == ("get_weather", {"city": "Paris"}, "call_abc")
    sent = fake_upstream.last.body
    assert sent is not None and sent["tool_choice"] == "required"
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    fake_upstream.queue(Reply(content="It is sunny in Paris."))
    assert first.candidates and first.candidates[0].content
    result = types.Part.from_function_response(name="get_weather", response={"output": "sunny"})
    turns = [question, first.candidates[0].content, types.Content(role="user", parts=[result])]
    second = client.models.generate_content(model=MODEL, contents=turns, config=config)
    assert second.text == "It is sunny in Paris."
    messages = (fake_upstream.last.body or {})["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "call_abc"
    assert messages[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert messages[2] == {"role": "tool", "tool_call_id": "call_abc", "content": "sunny"}


def test_reasoning_comes_back_as_thought_parts(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="42", reasoning="Let me think."))
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=2048))
    answer = sdk(gateway).models.generate_content(model=MODEL, contents="The answer?", config=config)
    assert answer.candidates and answer.candidates[0].content and answer.candidates[0].content.parts
    thought, text = answer.candidates[0].content.parts
    assert (thought.thought, thought.text, text.text) == (True, "Let me think.", "42")
    assert (fake_upstream.last.body or {})["reasoning_effort"] == "medium"


def test_json_output_asks_for_a_json_schema(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content='{"city": "Paris"}'))
    schema = types.Schema(type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)})
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=schema)
    answer = sdk(gateway).models.generate_content(model=MODEL, contents="Where?", config=config)
    assert json.loads(answer.text or "") == {"city": "Paris"}
    sent = (fake_upstream.last.body or {})["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["schema"] == {"type": "object", "properties": {"city": {"type": "string"}}}


def test_the_key_is_taken_from_the_query_and_a_bearer_header(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
    path = f"/v1beta/models/{MODEL}:generateContent"
    fake_upstream.queue(Reply(content="by query"), Reply(content="by bearer"))
    by_query = gateway.http.post(f"{path}?key={gateway.secret}", json=body)
    by_bearer = gateway.http.post(path, json=body, headers=gateway.headers())
    assert by_query.status_code == 200, by_query.text
    assert by_query.json()["candidates"][0]["content"]["parts"] == [{"text": "by query"}]
    assert by_bearer.json()["candidates"][0]["content"]["parts"] == [{"text": "by bearer"}]


def test_an_encoded_slash_in_the_model_reaches_the_model(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="encoded"))
    encoded = MODEL.replace("/", "%2F")
    response = gateway.http.post(
        f"/v1beta/models/{encoded}:generateContent",
        json={"contents": [{"parts": [{"text": "Hi"}]}]},
        headers={"x-goog-api-key": gateway.secret},
    )
    assert response.status_code == 200, response.text
    assert response.json()["modelVersion"] == MODEL


def test_the_model_list_is_the_catalogue_in_googles_shape(gateway: Gateway) -> None:
    [listed] = list(sdk(gateway).models.list())
    assert listed.name == f"models/{MODEL}"
    assert (listed.input_token_limit, listed.output_token_limit) == (8192, 1000)
    assert listed.supported_actions == ["generateContent", "streamGenerateContent", "countTokens"]
    got = sdk(gateway).models.get(model=MODEL)
    assert got.name == f"models/{MODEL}" and got.input_token_limit == 8192


# -- unhappy paths, in Google's error shape ---------------------------------------------------------


def test_a_wrong_key_is_unauthenticated(gateway: Gateway) -> None:
    with pytest.raises(errors.ClientError) as raised:
        sdk(gateway, "sk-not-a-key").models.generate_content(model=MODEL, contents="Hi")
    assert raised.value.code == 401 and raised.value.status == "UNAUTHENTICATED"
    response = gateway.http.post(f"/v1beta/models/{MODEL}:generateContent", json={"contents": []})
    assert google_error_of(response)["status"] == "UNAUTHENTICATED"


def test_an_unknown_model_is_not_found(gateway: Gateway) -> None:
    with pytest.raises(errors.ClientError) as raised:
        sdk(gateway).models.generate_content(model="acme/nothing", contents="Hi")
    assert raised.value.code == 404 and raised.value.status == "NOT_FOUND"


def test_another_users_scoped_key_is_refused_the_model(gateway: Gateway, bob: Any) -> None:
    _key, secret = create_key(bob, "scoped", allowed_models=["acme/other"])
    with pytest.raises(errors.ClientError) as raised:
        sdk(gateway, secret).models.generate_content(model=MODEL, contents="Hi")
    assert raised.value.status in ("PERMISSION_DENIED", "NOT_FOUND")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contents": []}, "contents"),
        ({"contents": [{"parts": [{"text": 1}]}]}, "contents[0].parts[0].text"),
        ({"contents": [{"parts": [{}]}]}, "contents[0].parts[0]"),
        ({"contents": [{"parts": [{"text": "Hi"}]}], "generationConfig": {"temperature": 3}}, "temperature"),
        ({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": {"maxOutputTokens": 10**6}}, "maxOutputTokens"),
    ],
)
def test_bad_requests_are_invalid_argument(gateway: Gateway, body: dict[str, Any], field: str) -> None:
    response = gateway.http.post(
        f"/v1beta/models/{MODEL}:generateContent", json=body, headers={"x-goog-api-key": gateway.secret}
    )
    assert response.status_code == 400
    error = google_error_of(response)
    assert error["status"] == "INVALID_ARGUMENT" and field in error["message"]


def test_a_model_id_no_row_can_have_is_invalid_argument(gateway: Gateway) -> None:
    response = gateway.http.post(
        "/v1beta/models/acme%00chat:generateContent",
        json={"contents": [{"parts": [{"text": "Hi"}]}]},
        headers={"x-goog-api-key": gateway.secret},
    )
    assert response.status_code == 400 and google_error_of(response)["status"] == "INVALID_ARGUMENT"


def test_what_the_model_cannot_take_is_refused_before_anything_is_reserved(gateway: Gateway) -> None:
    image = {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    response = gateway.http.post(
        f"/v1beta/models/{MODEL}:generateContent",
        json={"contents": [{"parts": [{"text": "What is this?"}, image]}]},
        headers={"x-goog-api-key": gateway.secret},
    )
    assert response.status_code == 400 and "does not accept images" in google_error_of(response)["message"]
    counted = gateway.http.post(f"/v1beta/models/{MODEL}:countTokens", json={}, headers=gateway.headers())
    assert counted.status_code == 400 and "contents" in google_error_of(counted)["message"]


def test_broken_json_is_invalid_argument(gateway: Gateway) -> None:
    response = gateway.http.post(
        f"/v1beta/models/{MODEL}:generateContent", content=b"{", headers={"x-goog-api-key": gateway.secret}
    )
    assert response.status_code == 400 and google_error_of(response)["status"] == "INVALID_ARGUMENT"


def test_an_unknown_path_is_not_found_in_googles_shape(gateway: Gateway) -> None:
    response = gateway.http.get("/v1beta/tunedModels", headers={"x-goog-api-key": gateway.secret})
    assert response.status_code == 404 and google_error_of(response)["status"] == "NOT_FOUND"
    response = gateway.http.post(
        f"/v1beta/models/{MODEL}:embedContent", json={}, headers={"x-goog-api-key": gateway.secret}
    )
    assert response.status_code == 405 and google_error_of(response)["status"] == "INVALID_ARGUMENT"


def test_a_rate_limit_is_resource_exhausted(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    Limit.objects.create(user=gateway.user, requests_per_minute=1)
    fake_upstream.queue(Reply(content="first"))
    client = sdk(gateway)
    client.models.generate_content(model=MODEL, contents="Hi")
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model=MODEL, contents="Hi again")
    assert raised.value.code == 429 and raised.value.status == "RESOURCE_EXHAUSTED"


def test_an_upstream_down_is_unavailable(gateway: Gateway, fake_upstream: FakeUpstream, one_attempt: None) -> None:
    fake_upstream.queue(Reply(status=503, error_message="overloaded"))
    with pytest.raises(errors.ServerError) as raised:
        sdk(gateway).models.generate_content(model=MODEL, contents="Hi")
    assert raised.value.status == "UNAVAILABLE"


def test_a_query_key_is_taken_out_of_the_query_the_access_log_writes() -> None:
    scope: dict[str, Any] = {"query_string": b"alt=sse&key=sk-secret", "headers": [(b"accept", b"*/*")]}
    _key_out_of_query(scope)
    assert scope["query_string"] == b"alt=sse"
    assert scope["headers"] == [(b"accept", b"*/*"), (b"x-goog-api-key", b"sk-secret")]


def test_a_silent_upstream_sends_gemini_clients_nothing_they_would_misread() -> None:
    async def events() -> AsyncIterator[dict[str, Any] | None]:
        yield None  # the upstream was silent for a while
        yield {"candidates": []}

    async def frames() -> list[bytes]:
        return [frame async for frame in sse(None, events(), GEMINI_SSE)]

    assert b"".join(asyncio.run(frames())) == b'data: {"candidates":[]}\n\n'
