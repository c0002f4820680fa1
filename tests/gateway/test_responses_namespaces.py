"""POST /v1/responses with `namespace` tools on a chat-completions upstream, with the openai SDK in process:
the upstream sees flat functions, the client gets its calls back namespaced; bad tools are a 400 in OpenAI's shape.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.gateway.conftest import MODEL, Gateway
from tests.gateway.test_responses import dumped
from tests.gateway.test_translate_responses_tools import AGENTS, EXEC
from tests.openai_schema import validate, validate_event

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_namespaced_call_comes_back_namespaced_and_its_output_goes_up_flat(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    client = gateway.client()
    fake_upstream.queue(Reply(tool_calls=[ToolCall("multi_agent_v1__spawn_agent", '{"id": "a1"}', id="call_9")]))
    first = client.responses.create(model=MODEL, input="spawn", tools=[EXEC, AGENTS], store=False)  # type: ignore[list-item]
    validate(dumped(first), "Response")
    [call] = [dumped(item) for item in first.output]
    assert (call["type"], call["namespace"], call["name"], call["call_id"]) == (
        "function_call",
        "multi_agent_v1",
        "spawn_agent",
        "call_9",
    )
    sent = fake_upstream.last.body
    assert sent is not None and [t["function"]["name"] for t in sent["tools"]][:2] == [
        "exec_command",
        "multi_agent_v1__spawn_agent",
    ]
    fake_upstream.queue(Reply(content="It started."))
    second = client.responses.create(
        model=MODEL,
        tools=[EXEC, AGENTS],  # type: ignore[list-item]
        input=[
            {"role": "user", "content": "spawn"},
            call,  # type: ignore[list-item]
            {"type": "function_call_output", "call_id": "call_9", "output": "agent a1 started"},
        ],
    )
    assert second.output_text == "It started."
    sent = fake_upstream.last.body
    assert sent is not None
    assert sent["messages"][1]["tool_calls"][0]["function"]["name"] == "multi_agent_v1__spawn_agent"
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "call_9", "content": "agent a1 started"}


def test_a_streamed_namespaced_call_carries_its_namespace_in_every_event(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(tool_calls=[ToolCall("multi_agent_v1__wait_agent", '{"id": "a1"}')]))
    events = [
        dumped(event)
        for event in gateway.client().responses.create(model=MODEL, input="wait", tools=[AGENTS], stream=True)  # type: ignore[list-item]
    ]
    for event in events:
        validate_event(event)
    items = [e["item"] for e in events if e["type"] in ("response.output_item.added", "response.output_item.done")]
    assert [(i["namespace"], i["name"]) for i in items] == [("multi_agent_v1", "wait_agent")] * 2
    [final] = [e["response"] for e in events if e["type"] == "response.completed"]
    assert final["output"][0]["namespace"] == "multi_agent_v1"


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({**AGENTS, "tools": []}, "tools[0].tools"),
        ({**AGENTS, "tools": [{"type": "custom", "name": "apply_patch"}]}, "tools[0].tools[0].type"),
        ({"type": "frobnicate"}, "tools[0].type"),
        ({"type": "code_interpreter", "container": {"type": "auto"}}, "tools[0].type"),
    ],
)
def test_a_bad_namespace_or_an_unknown_tool_is_a_400_in_openai_s_shape(
    gateway: Gateway, fake_upstream: FakeUpstream, tool: dict[str, Any], param: str
) -> None:
    before = len(fake_upstream.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().responses.create(model=MODEL, input="hi", tools=[tool])  # type: ignore[list-item]
    body: Any = caught.value.body
    assert caught.value.status_code == 400 and body["param"] == param and param in body["message"]
    assert body["type"] == "invalid_request_error" and len(fake_upstream.requests) == before


def test_include_and_client_metadata_are_accepted_and_not_sent_to_a_chat_upstream(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="ok"))
    answer = gateway.http.post(
        "/v1/responses",
        json={
            "model": MODEL,
            "input": "hi",
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "session-1",
            "client_metadata": {"session_id": "s1"},
        },
        headers=gateway.headers(),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["prompt_cache_key"] == "session-1"
    sent = fake_upstream.last.body
    assert sent is not None and sent["prompt_cache_key"] == "session-1"
    assert "client_metadata" not in sent and "include" not in sent
