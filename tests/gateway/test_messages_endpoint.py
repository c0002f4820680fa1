"""POST /v1/messages and /v1/messages/count_tokens through the official anthropic SDK.

The model's upstream speaks OpenAI's format (the fake upstream): requests are translated, run
through the chat-completions pipeline (scope, limits, routing, ledger) and translated back.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.keys import create_key
from accounts.models import ApiKey, User
from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.gateway.conftest import MODEL, UPSTREAM_MODEL, Gateway, wait_for_usage
from usage.models import Limit

pytestmark = pytest.mark.django_db(transaction=True)

HELLO: Any = [{"role": "user", "content": "Say hello"}]
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def sdk(gateway: Gateway, secret: str | None = None, *, bearer: bool = False) -> anthropic.Anthropic:
    key = secret or gateway.secret
    credentials: dict[str, Any] = {"auth_token": key} if bearer else {"api_key": key}
    return anthropic.Anthropic(base_url=gateway.url, max_retries=0, http_client=gateway.app.sdk_client(), **credentials)


def test_it_answers_a_message_through_the_chat_pipeline(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="Hello there"))
    message = sdk(gateway).messages.create(model=MODEL, max_tokens=100, system="Be brief.", messages=HELLO)
    assert message.type == "message" and message.role == "assistant"
    assert message.model == MODEL
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hello there"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0 and message.usage.input_tokens > 0
    sent = fake_upstream.last.body
    assert sent is not None and sent["model"] == UPSTREAM_MODEL and sent["max_tokens"] == 100
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
    [row] = wait_for_usage(1)
    assert row.api_key_id == gateway.key.pk and row.status == 200 and row.model_public_id == MODEL


async def test_the_async_sdk_gets_a_message(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="Async hello"))
    client = anthropic.AsyncAnthropic(
        base_url=gateway.url, api_key=gateway.secret, max_retries=0, http_client=gateway.app.async_sdk_client()
    )
    async with client:
        message = await client.messages.create(model=MODEL, max_tokens=50, messages=HELLO)
    assert message.content[0].text == "Async hello"  # type: ignore[union-attr]


def test_it_streams_anthropic_events_in_order(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="one two three"))
    with sdk(gateway).messages.stream(model=MODEL, max_tokens=50, messages=HELLO) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert "content_block_start" in kinds and "content_block_stop" in kinds
    assert final.content[0].text == "one two three"  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3
    [row] = wait_for_usage(1)
    assert row.stream and row.status == 200


async def test_the_async_sdk_streams_text(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="a b c"))
    client = anthropic.AsyncAnthropic(
        base_url=gateway.url, api_key=gateway.secret, max_retries=0, http_client=gateway.app.async_sdk_client()
    )
    async with client, client.messages.stream(model=MODEL, max_tokens=50, messages=HELLO) as stream:
        text = "".join([piece async for piece in stream.text_stream])
    assert text == "a b c"


def test_a_tool_round_trip(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    client = sdk(gateway)
    fake_upstream.queue(Reply(content="", tool_calls=[ToolCall("get_weather", '{"city": "Paris"}', id="call_7")]))
    asked = client.messages.create(model=MODEL, max_tokens=100, tools=[WEATHER_TOOL], messages=HELLO)
    assert asked.stop_reason == "tool_use"
    [use] = [block for block in asked.content if block.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Paris"} and use.id == "call_7"
    sent = fake_upstream.last.body
    assert sent is not None and sent["tools"][0]["function"]["name"] == "get_weather"

    fake_upstream.queue(Reply(content="It is sunny in Paris."))
    answer = client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=[
            *HELLO,
            {"role": "assistant", "content": [use.model_dump()]},  # type: ignore[misc,list-item]
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
        ],
    )
    assert answer.content[0].text == "It is sunny in Paris."  # type: ignore[union-attr]
    sent = fake_upstream.last.body
    assert sent is not None
    assistant, result = sent["messages"][1], sent["messages"][2]
    assert assistant["tool_calls"][0]["id"] == "call_7"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert result == {"role": "tool", "tool_call_id": "call_7", "content": "sunny"}


def test_a_streamed_tool_call_arrives_as_input_json(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="", tool_calls=[ToolCall("get_weather", '{"city": "Oslo"}')]))
    with sdk(gateway).messages.stream(model=MODEL, max_tokens=50, tools=[WEATHER_TOOL], messages=HELLO) as stream:
        final = stream.get_final_message()
    [use] = [block for block in final.content if block.type == "tool_use"]
    assert use.input == {"city": "Oslo"} and final.stop_reason == "tool_use"


def test_it_counts_tokens_without_calling_the_upstream(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    client = sdk(gateway)
    short = client.messages.count_tokens(model=MODEL, messages=HELLO)
    longer = client.messages.count_tokens(model=MODEL, messages=HELLO, system="word " * 200, tools=[WEATHER_TOOL])
    assert 0 < short.input_tokens < longer.input_tokens
    assert not fake_upstream.chat_requests()


def test_anthropic_version_and_beta_headers_are_accepted(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="ok"))
    answer = gateway.http.post(
        "/v1/messages",
        headers={
            "x-api-key": gateway.secret,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14",
        },
        json={"model": MODEL, "max_tokens": 10, "messages": HELLO},
    )
    assert answer.status_code == 200 and answer.json()["content"][0]["text"] == "ok"


def test_a_bearer_token_works_as_claude_code_sends_it(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="ok"))
    message = sdk(gateway, bearer=True).messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert message.content[0].text == "ok"  # type: ignore[union-attr]


@override_settings(GATEWAY_KEEPALIVE_SECONDS=0.1)
def test_a_silent_upstream_gets_pings(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="slow reply", delay=0.6))
    with gateway.http.stream(
        "POST",
        "/v1/messages",
        headers={"x-api-key": gateway.secret},
        json={"model": MODEL, "max_tokens": 10, "messages": HELLO, "stream": True},
    ) as answer:
        lines = [line for line in answer.iter_lines() if line.startswith("event: ")]
    assert lines[0] == "event: message_start"
    assert "event: ping" in lines
    assert lines[-1] == "event: message_stop"


# --- errors, each as its SDK exception ---------------------------------------------------------


def test_a_wrong_key_is_an_authentication_error(gateway: Gateway) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        sdk(gateway, "sk-not-a-key").messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


def test_an_unknown_model_is_not_found(gateway: Gateway) -> None:
    with pytest.raises(anthropic.NotFoundError):
        sdk(gateway).messages.create(model="acme/nothing", max_tokens=10, messages=HELLO)
    with pytest.raises(anthropic.NotFoundError):
        sdk(gateway).messages.count_tokens(model="acme/nothing", messages=HELLO)


def test_a_bad_request_names_the_param(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        bad: Any = [{"role": "user", "content": 5}]
        sdk(gateway).messages.create(model=MODEL, max_tokens=10, messages=bad)
    error = caught.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error" and "messages.0.content" in error["message"]
    answer = gateway.http.post("/v1/messages", headers={"x-api-key": gateway.secret}, content=b"{not json")
    assert answer.status_code == 400 and answer.json()["type"] == "error"
    assert not fake_upstream.chat_requests()


@pytest.mark.parametrize("bearer", [False, True])
def test_a_scoped_key_keeps_its_scope_whichever_header_carries_it(
    gateway: Gateway, fake_upstream: FakeUpstream, bearer: bool
) -> None:
    _key, secret = create_key(gateway.user, "scoped", allowed_models=["acme/other"])
    client = sdk(gateway, secret, bearer=bearer)
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert caught.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    with pytest.raises(anthropic.PermissionDeniedError):
        client.messages.count_tokens(model=MODEL, messages=HELLO)
    assert not fake_upstream.chat_requests()


def test_a_revoked_key_is_refused_on_x_api_key(gateway: Gateway) -> None:
    ApiKey.objects.filter(pk=gateway.key.pk).update(revoked_at=timezone.now())
    with pytest.raises(anthropic.AuthenticationError):
        sdk(gateway).messages.create(model=MODEL, max_tokens=10, messages=HELLO)


def test_over_the_limit_is_a_rate_limit_error_and_another_users_limit_is_not_mixed(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    Limit.objects.create(user=gateway.user, requests_per_minute=1)
    fake_upstream.queue(Reply(content="first"), Reply(content="bob's"))
    sdk(gateway).messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    with pytest.raises(anthropic.RateLimitError) as caught:
        sdk(gateway).messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    bob = User.objects.create_user("bob", "bob@example.com", "correct-horse-battery-staple")
    bob_key, bob_secret = create_key(bob, "bob's")
    answer = sdk(gateway, bob_secret).messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert answer.content[0].text == "bob's"  # type: ignore[union-attr]
    rows = wait_for_usage(3)
    assert [(row.user_id, row.api_key_id, row.status) for row in rows] == [
        (gateway.user.pk, gateway.key.pk, 200),
        (gateway.user.pk, gateway.key.pk, 429),
        (bob.pk, bob_key.pk, 200),
    ]


def test_an_overloaded_upstream_is_529_overloaded(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(*[Reply(status=503, error_type="server_error")] * 5)
    with pytest.raises(anthropic.OverloadedError) as caught:
        sdk(gateway).messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_a_failing_upstream_is_an_api_error(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(*[Reply(status=500, error_type="server_error")] * 5)
    with pytest.raises(anthropic.InternalServerError) as caught:
        sdk(gateway).messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert caught.value.body["type"] == "error"  # type: ignore[index]


def test_a_failure_mid_stream_is_an_error_event(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="one two three four", fail_after_chunks=2))
    with (
        pytest.raises(anthropic.APIStatusError),
        sdk(gateway).messages.stream(model=MODEL, max_tokens=50, messages=HELLO) as stream,
    ):
        for _event in stream:
            pass


def test_an_unknown_path_under_messages_answers_in_anthropics_shape(gateway: Gateway) -> None:
    answer = gateway.http.post("/v1/messages/nope", headers={"x-api-key": gateway.secret}, json={})
    assert answer.status_code == 404
    assert answer.json()["type"] == "error" and answer.json()["error"]["type"] == "not_found_error"


def test_a_key_holding_a_lone_surrogate_is_a_400_not_a_server_error(gateway: Gateway) -> None:
    for path in ("/v1/messages", "/v1/chat/completions"):
        answer = gateway.http.post(
            path,
            headers={"x-api-key": gateway.secret, "Authorization": f"Bearer {gateway.secret}"},
            content=b'{"model": "' + MODEL.encode() + b'", "max_tokens": 5, "messages": [], "a\\ud800": 1}',
        )
        assert answer.status_code == 400, answer.text
