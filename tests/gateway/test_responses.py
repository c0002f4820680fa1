"""POST /v1/responses and the stored responses, with the openai SDK in process.

Each behaviour runs against a chat-only upstream (the request translated to chat completions) and,
where it applies, against one speaking the Responses API (the request passed through); every
answer and streamed event is validated against OpenAI's schema.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import Provider
from responses.models import StoredResponse
from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.gateway.conftest import MODEL, Gateway, wait_for_usage
from tests.openai_schema import validate, validate_event

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(params=["translated", "native"])
def mode(request: pytest.FixtureRequest, gateway: Gateway, fake_upstream: FakeUpstream) -> str:
    if request.param == "native":
        fake_upstream.speaks_responses = True
        Provider.objects.filter(pk=gateway.provider.pk).update(responses_api=True)
    return str(request.param)


def dumped(model: Any) -> dict[str, Any]:
    payload: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return payload


def upstream_path(mode: str) -> str:
    return "/v1/responses" if mode == "native" else "/v1/chat/completions"


def bob_secret() -> str:
    bob = User.objects.create_user("bob", "bob@example.com", "correct-horse-battery-staple")
    return create_key(bob, "bob's")[1]


def test_a_plain_response_is_answered_ledgered_and_kept(
    gateway: Gateway, fake_upstream: FakeUpstream, mode: str
) -> None:
    fake_upstream.queue(Reply(content="Hello there"))
    answer = gateway.client().responses.create(model=MODEL, input="Hi", instructions="Be brief.")
    validate(dumped(answer), "Response")
    assert answer.output_text == "Hello there" and answer.model == MODEL and answer.status == "completed"
    assert answer.id.startswith("resp_") and answer.usage is not None and answer.usage.output_tokens > 0
    sent = fake_upstream.last
    assert sent.path == upstream_path(mode) and sent.body is not None and sent.body["model"] == "fake-small"
    (row,) = wait_for_usage(1)
    assert (row.status, row.model_public_id, row.stream) == (200, MODEL, False)
    assert row.completion_tokens == answer.usage.output_tokens
    assert StoredResponse.objects.get(id=answer.id).user_id == gateway.user.pk


def test_a_streamed_response_gives_the_spec_s_events_in_sequence(
    gateway: Gateway, fake_upstream: FakeUpstream, mode: str
) -> None:
    fake_upstream.queue(Reply(content="one two three"))
    events = list(gateway.client().responses.create(model=MODEL, input="Count", stream=True))
    for event in events:
        validate_event(dumped(event))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    for kind in ("response.output_item.added", "response.content_part.added", "response.output_text.done"):
        assert kind in kinds
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")  # type: ignore[union-attr]
    final = events[-1].response  # type: ignore[union-attr]
    assert text == "one two three" == final.output_text and final.usage is not None
    assert fake_upstream.last.path == upstream_path(mode)
    assert gateway.client().responses.retrieve(final.id).output_text == "one two three"
    (row,) = wait_for_usage(1)
    assert (row.status, row.stream, row.completion_tokens) == (200, True, 3)


def test_the_raw_stream_names_each_event_and_has_no_done_marker(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    with gateway.http.stream(
        "POST", "/v1/responses", headers=gateway.headers(), json={"model": MODEL, "input": "Hi", "stream": True}
    ) as answer:
        body = answer.read().decode()
    assert answer.headers["content-type"].startswith("text/event-stream")
    frames = [frame for frame in body.split("\n\n") if frame.strip()]
    for frame in frames:
        name, data = frame.split("\n")
        assert name.removeprefix("event: ") == json.loads(data.removeprefix("data: "))["type"]
    assert "[DONE]" not in body


def test_a_function_tool_round_trip_continues_the_stored_conversation(
    gateway: Gateway, fake_upstream: FakeUpstream, mode: str
) -> None:
    client = gateway.client()
    fake_upstream.queue(Reply(tool_calls=[ToolCall("get_weather", '{"city":"Paris"}', id="call_w1")]))
    first = client.responses.create(model=MODEL, input="Weather in Paris?", tools=[WEATHER])  # type: ignore[list-item]
    validate(dumped(first), "Response")
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert (call.name, call.arguments, call.call_id) == ("get_weather", '{"city":"Paris"}', "call_w1")  # type: ignore[union-attr]

    fake_upstream.queue(Reply(content="It is sunny in Paris."))
    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "call_w1", "output": "sunny, 21 C"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    validate(dumped(second), "Response")
    assert second.output_text == "It is sunny in Paris." and second.previous_response_id == first.id
    sent = fake_upstream.last.body
    assert sent is not None and "previous_response_id" not in sent
    if mode == "native":
        assert [item.get("type") for item in sent["input"]] == ["message", "function_call", "function_call_output"]
    else:
        roles = [message["role"] for message in sent["messages"]]
        assert roles == ["user", "assistant", "tool"]
        assert sent["messages"][1]["tool_calls"][0]["id"] == "call_w1"
        assert sent["messages"][2] == {"role": "tool", "tool_call_id": "call_w1", "content": "sunny, 21 C"}


def test_previous_response_id_carries_the_turns_but_not_the_instructions(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    client = gateway.client()
    fake_upstream.queue(Reply(content="Hello Ann."), Reply(content="Hi again."), Reply(content="Your name is Ann."))
    first = client.responses.create(model=MODEL, input="I am Ann.", instructions="Be brief.")
    second = client.responses.create(model=MODEL, input="Hello?", previous_response_id=first.id)
    client.responses.create(model=MODEL, input="My name?", previous_response_id=second.id, instructions="Be kind.")
    sent = fake_upstream.last.body
    assert sent is not None
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("system", "Be kind."),
        ("user", "I am Ann."),
        ("assistant", "Hello Ann."),
        ("user", "Hello?"),
        ("assistant", "Hi again."),
        ("user", "My name?"),
    ]


def test_a_json_schema_text_format_becomes_the_upstream_s_response_format(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content='{"answer": 42}'))
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    text = {"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}}
    answer = gateway.client().responses.create(model=MODEL, input="The answer?", text=text)  # type: ignore[arg-type]
    validate(dumped(answer), "Response")
    assert json.loads(answer.output_text) == {"answer": 42}
    assert answer.text is not None and answer.text.format is not None and answer.text.format.type == "json_schema"
    sent = fake_upstream.last.body
    assert sent is not None and sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == schema


def test_a_json_schema_to_a_model_without_json_output_is_a_400(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    gateway.model.json_output = False
    gateway.model.save()
    text = {"format": {"type": "json_schema", "name": "a", "schema": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError):
        gateway.client().responses.create(model=MODEL, input="x", text=text)  # type: ignore[arg-type]
    assert fake_upstream.requests == []


def test_retrieve_delete_and_input_items_of_a_stored_response(
    gateway: Gateway, fake_upstream: FakeUpstream, mode: str
) -> None:
    client = gateway.client()
    made = client.responses.create(
        model=MODEL,
        input=[
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": [{"type": "input_text", "text": "Hello"}]},
        ],
    )
    found = client.responses.retrieve(made.id)
    validate(dumped(found), "Response")
    assert found.id == made.id and found.output_text == made.output_text
    items = client.responses.input_items.list(made.id)
    page = gateway.http.get(f"/v1/responses/{made.id}/input_items", headers=gateway.headers()).json()
    validate(page, "ResponseItemList")
    assert [item.role for item in items.data] == ["user", "developer"]  # type: ignore[union-attr]
    ascending = client.responses.input_items.list(made.id, order="asc", limit=1)
    assert [item.role for item in ascending.data] == ["developer"] and ascending.has_more  # type: ignore[union-attr]
    rest = client.responses.input_items.list(made.id, order="asc", after=ascending.data[0].id)
    assert [item.role for item in rest.data] == ["user"] and not rest.has_more  # type: ignore[union-attr]
    client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(made.id)


def test_another_users_response_id_is_not_found_whatever_the_call(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    made = gateway.client().responses.create(model=MODEL, input="A secret of Alice's")
    bob = gateway.client(bob_secret())
    for attempt in (
        lambda: bob.responses.retrieve(made.id),
        lambda: bob.responses.delete(made.id),
        lambda: bob.responses.input_items.list(made.id),
        lambda: bob.responses.create(model=MODEL, input="Go on", previous_response_id=made.id),
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            attempt()
        assert "Alice" not in str(caught.value.body)
    assert len(fake_upstream.requests) == 1  # Bob's continuation never reached the upstream
    assert gateway.client().responses.retrieve(made.id).output_text == made.output_text


def test_store_false_keeps_nothing(gateway: Gateway, fake_upstream: FakeUpstream, mode: str) -> None:
    made = gateway.client().responses.create(model=MODEL, input="Forget this", store=False)
    assert made.store is False and not StoredResponse.objects.exists()
    with pytest.raises(openai.NotFoundError):
        gateway.client().responses.retrieve(made.id)


def test_stored_responses_go_with_their_user(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    gateway.client().responses.create(model=MODEL, input="Mine")
    assert StoredResponse.objects.count() == 1
    wait_for_usage(1)  # the ledger writes its row after the answer: deleting the user before would race it
    User.objects.filter(pk=gateway.user.pk).delete()
    assert not StoredResponse.objects.exists()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "input"),
        ({"input": "x", "max_output_tokens": 5000}, "max_output_tokens"),
        ({"input": "x", "tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}, "tools[0].type"),
        ({"input": "x", "background": True}, "background"),
    ],
)
def test_a_bad_request_is_a_400_naming_the_param(
    gateway: Gateway, fake_upstream: FakeUpstream, body: dict[str, Any], param: str
) -> None:
    answer = gateway.http.post("/v1/responses", headers=gateway.headers(), json={"model": MODEL, **body})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == param
    assert fake_upstream.requests == []


def test_a_failure_mid_stream_ends_with_response_failed(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="one two three four", fail_after_chunks=2))
    events = list(gateway.client().responses.create(model=MODEL, input="Count", stream=True))
    for event in events:
        validate_event(dumped(event))
    assert events[-1].type == "response.failed" and not StoredResponse.objects.exists()
    (row,) = wait_for_usage(1)
    assert row.status == 502


def test_a_text_model_is_refused_naming_its_endpoint(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    gateway.model.kind = "text"
    gateway.model.save()
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().responses.create(model=MODEL, input="x")
    assert "/v1/completions" in caught.value.message


def test_without_usage_from_the_upstream_it_is_estimated_and_flagged(
    gateway: Gateway, fake_upstream: FakeUpstream, mode: str
) -> None:
    fake_upstream.queue(Reply(content="a few words of answer", usage=False))
    answer = gateway.client().responses.create(model=MODEL, input="Say something")
    payload = dumped(answer)
    validate(payload, "Response")
    assert payload["usage"]["output_tokens"] > 0 and payload["usage"].get("estimated") is True
    (row,) = wait_for_usage(1)
    assert row.usage_estimated and row.completion_tokens == payload["usage"]["output_tokens"]


def test_reasoning_from_the_upstream_streams_as_a_reasoning_summary(
    gateway: Gateway, fake_upstream: FakeUpstream, mode: str
) -> None:
    fake_upstream.queue(Reply(content="Four.", reasoning="Two and two make four."))
    events = list(gateway.client().responses.create(model=MODEL, input="2+2?", stream=True))
    for event in events:
        validate_event(dumped(event))
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")  # type: ignore[union-attr]
    final = events[-1].response  # type: ignore[union-attr]
    assert summary == "Two and two make four." and final.output_text == "Four."
    assert [item.type for item in final.output] == ["reasoning", "message"]


def test_a_client_leaving_a_stream_closes_the_upstream_request_and_keeps_nothing(
    live_gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content=" ".join(["word"] * 200), delay=0.05))
    body = {"model": MODEL, "input": "Talk", "stream": True}
    with (
        httpx.Client(timeout=60) as client,
        client.stream(
            "POST", live_gateway.base_url + "/responses", json=body, headers=live_gateway.headers()
        ) as stream,
    ):
        for line in stream.iter_lines():
            if '"response.output_text.delta"' in line:
                break  # leave with the upstream still talking
    assert fake_upstream.wait_for_requests(1)
    assert fake_upstream.last.disconnected.wait(timeout=10), "the upstream request stayed open"
    (row,) = wait_for_usage(1)
    assert row.status == 499 and not StoredResponse.objects.exists()
