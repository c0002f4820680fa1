"""Responses <-> chat completions for what Codex CLI sends: `namespace` tools, `include`, `prompt_cache_key`,
`client_metadata`; the hosted tools' items of earlier turns. Answers and events are validated against OpenAI's schema.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import GatewayError
from gateway.translate_responses import ResponseStream, chat_request
from tests.gateway.test_translate_responses import IDS, answer, chat, chunk, request, run, types

OBJECT = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
AGENTS = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Tools for spawning and managing sub-agents.",
    "tools": [
        {"type": "function", "name": "spawn_agent", "description": "Start one", "strict": False, "parameters": OBJECT},
        {"type": "function", "name": "wait_agent", "description": "Wait for one", "parameters": OBJECT},
    ],
}
EXEC = {"type": "function", "name": "exec_command", "description": "Run a command", "parameters": OBJECT}


def function_names(body: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in body["tools"]]


def test_a_namespace_s_functions_are_offered_flattened_with_their_own_descriptions() -> None:
    body = chat(request(input="hi", tools=[EXEC, AGENTS]))
    assert function_names(body) == ["exec_command", "multi_agent_v1__spawn_agent", "multi_agent_v1__wait_agent"]
    spawn = body["tools"][1]["function"]
    assert spawn == {
        "name": "multi_agent_v1__spawn_agent",
        "description": "Start one",
        "strict": False,
        "parameters": OBJECT,
    }


def test_a_flattened_name_never_takes_a_top_level_function_s_name() -> None:
    taken = "multi_agent_v1__spawn_agent"
    clash = {**EXEC, "name": taken}
    body = chat(request(input="hi", tools=[AGENTS, clash]))
    assert function_names(body) == ["multi_agent_v1__spawn_agent_2", "multi_agent_v1__wait_agent", taken]
    response = answer(
        request(input="hi", tools=[AGENTS, clash]),
        {"content": None, "tool_calls": [call("c1", "multi_agent_v1__spawn_agent_2"), call("c2", taken)]},
        finish_reason="tool_calls",
    )
    first, second = response["output"]
    assert (first["namespace"], first["name"]) == ("multi_agent_v1", "spawn_agent")
    assert "namespace" not in second and second["name"] == taken


def test_long_or_odd_namespace_names_become_names_every_upstream_takes() -> None:
    odd = {**AGENTS, "name": "crm tools." + "x" * 70}
    [first, second] = function_names(chat(request(input="hi", tools=[odd])))
    assert len(first) == len(second) == 64 and first != second
    assert first.startswith("crm_tools_x") and set(first) <= set("abcdefghijklmnopqrstuvwxyz_0123456789")


def call(call_id: str, name: str, arguments: str = '{"id": "a1"}') -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_the_model_s_call_of_a_flattened_function_comes_back_with_its_namespace() -> None:
    req = request(input="spawn one", tools=[EXEC, AGENTS])
    response = answer(
        req,
        {
            "content": None,
            "tool_calls": [call("call_1", "multi_agent_v1__spawn_agent"), call("call_2", "exec_command")],
        },
        finish_reason="tool_calls",
    )
    spawned, executed = response["output"]
    assert spawned["type"] == "function_call" and spawned["call_id"] == "call_1"
    assert (spawned["namespace"], spawned["name"], spawned["arguments"]) == (
        "multi_agent_v1",
        "spawn_agent",
        '{"id": "a1"}',
    )
    assert "namespace" not in executed and executed["name"] == "exec_command"
    assert response["tools"][1]["type"] == "namespace" and response["tools"][1]["tools"][0]["name"] == "spawn_agent"


def test_a_streamed_call_of_a_flattened_function_comes_back_with_its_namespace() -> None:
    stream = ResponseStream(request(input="spawn", tools=[AGENTS], stream=True), IDS, "m")
    first = {"index": 0, **call("call_1", "multi_agent_v1__wait_agent", "")}
    events = run(
        stream,
        [
            chunk({"role": "assistant", "content": None, "tool_calls": [first]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"id": "a1"}'}}]}),
            chunk({}, "tool_calls"),
        ],
    )
    assert types(events)[2:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added, done = events[2]["item"], events[-2]["item"]
    assert (added["namespace"], added["name"]) == (done["namespace"], done["name"]) == ("multi_agent_v1", "wait_agent")
    assert events[-3]["name"] == "wait_agent"


def test_an_earlier_namespaced_call_goes_upstream_under_its_flattened_name() -> None:
    earlier = {
        "type": "function_call",
        "call_id": "call_1",
        "namespace": "multi_agent_v1",
        "name": "spawn_agent",
        "arguments": '{"id": "a1"}',
    }
    output = {"type": "function_call_output", "call_id": "call_1", "output": "started"}
    body = chat(request(tools=[AGENTS], input=[{"role": "user", "content": "go"}, earlier, output]))
    _user, assistant, result = body["messages"]
    assert assistant["tool_calls"][0]["function"] == {
        "name": "multi_agent_v1__spawn_agent",
        "arguments": '{"id": "a1"}',
    }
    assert result == {"role": "tool", "tool_call_id": "call_1", "content": "started"}
    # a namespace no longer offered keeps the same rule
    body = chat(request(input=[{"role": "user", "content": "go"}, {**earlier, "namespace": "gone"}, output]))
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == "gone__spawn_agent"


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({**AGENTS, "tools": []}, "tools[1].tools"),
        ({**AGENTS, "tools": "spawn_agent"}, "tools[1].tools"),
        ({k: v for k, v in AGENTS.items() if k != "name"}, "tools[1].name"),
        ({**AGENTS, "name": ""}, "tools[1].name"),
        ({**AGENTS, "tools": [{"type": "function", "description": "no name"}]}, "tools[1].tools[0].name"),
        ({**AGENTS, "tools": [{"type": "custom", "name": "patch"}]}, "tools[1].tools[0].type"),
        ({"type": "frobnicate"}, "tools[1].type"),
        ({"type": "mcp", "server_url": "https://mcp.example.com"}, "tools[1].server_label"),
    ],
)
def test_a_bad_namespace_or_an_unknown_tool_is_a_400_naming_the_field(tool: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        chat_request(request(input="hi", tools=[EXEC, tool]))
    assert caught.value.status == 400 and caught.value.param == param and param in caught.value.message


def test_hosted_tools_are_refused_unless_the_caller_runs_them() -> None:
    req = request(input="hi", tools=[EXEC, {"type": "web_search", "external_web_access": False}, AGENTS])
    with pytest.raises(GatewayError) as caught:
        chat_request(req)
    assert caught.value.param == "tools[1].type"
    assert function_names(chat_request(req, hosted=True))[0] == "exec_command"


def test_codex_s_include_cache_key_and_client_metadata_are_parsed() -> None:
    metadata = {"session_id": "0199", "x-codex-turn-metadata": '{"turn_id": "t1"}'}
    req = request(
        input="hi",
        include=["reasoning.encrypted_content", "web_search_call.action.sources"],
        prompt_cache_key="0199-cache",
        client_metadata=metadata,
    )
    assert req.include == ["reasoning.encrypted_content", "web_search_call.action.sources"]
    assert (req.prompt_cache_key, req.client_metadata) == ("0199-cache", metadata)
    body = chat(req)
    assert body["prompt_cache_key"] == "0199-cache"
    assert "client_metadata" not in body and "include" not in body


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"include": ["everything"]}, "include[0]"),
        ({"include": "reasoning.encrypted_content"}, "include"),
        ({"client_metadata": {"turn": 1}}, "client_metadata.turn"),
        ({"prompt_cache_key": 7}, "prompt_cache_key"),
    ],
)
def test_bad_codex_fields_are_a_400_naming_them(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        request(input="hi", **fields)
    assert caught.value.status == 400 and caught.value.param == param


def test_hosted_tools_bookkeeping_items_of_earlier_turns_are_not_sent_upstream() -> None:
    searched = {
        "type": "web_search_call",
        "id": "ws_1",
        "status": "completed",
        "action": {"type": "search", "query": "weather"},
    }
    listed = {"type": "mcp_list_tools", "id": "mcpl_1", "server_label": "docs", "tools": []}
    said = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Sunny."}]}
    body = chat(request(input=[{"role": "user", "content": "weather?"}, searched, listed, said]))
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"]


def test_an_mcp_tool_s_credentials_are_never_echoed_in_the_response() -> None:
    tool = {
        "type": "mcp",
        "server_label": "docs",
        "server_url": "https://mcp.example.com/mcp",
        "authorization": "oauth-secret",
        "headers": {"X-Key": "header-secret"},
        "require_approval": "never",
    }
    response = answer(request(input="hi", tools=[tool]), {"content": "ok"})
    assert response["tools"] == [
        {
            "type": "mcp",
            "server_label": "docs",
            "server_url": "https://mcp.example.com/mcp",
            "require_approval": "never",
        }
    ]


def test_an_earlier_mcp_call_reaches_a_chat_model_as_its_call_and_result() -> None:
    called = {
        "type": "mcp_call",
        "id": "mcp_1",
        "server_label": "docs",
        "name": "search",
        "arguments": '{"q": "otters"}',
        "output": "3 pages",
        "status": "completed",
    }
    body = chat(request(input=[{"role": "user", "content": "find"}, called]))
    _user, assistant, result = body["messages"]
    assert assistant["tool_calls"] == [
        {"id": "mcp_1", "type": "function", "function": {"name": "docs__search", "arguments": '{"q": "otters"}'}}
    ]
    assert result == {"role": "tool", "tool_call_id": "mcp_1", "content": "3 pages"}


def test_an_approval_answer_carries_the_result_the_caller_gives_and_an_unknown_one_is_a_400() -> None:
    asked = {
        "type": "mcp_approval_request",
        "id": "mcpr_1",
        "server_label": "docs",
        "name": "search",
        "arguments": "{}",
    }
    answer = {"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": True}
    req = request(input=[{"role": "user", "content": "find"}, asked, answer])
    body = chat_request(req, approvals={"mcpr_1": "3 pages"})
    assert body["messages"][1]["tool_calls"][0]["id"] == "mcpr_1"
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "mcpr_1", "content": "3 pages"}
    with pytest.raises(GatewayError) as caught:
        chat_request(request(input=[{"role": "user", "content": "find"}, {**answer, "approval_request_id": "x"}]))
    assert caught.value.param == "input[1].approval_request_id"
    with pytest.raises(GatewayError) as caught:
        request(input=[{k: v for k, v in asked.items() if k != "server_label"}])
    assert caught.value.param == "input[0].server_label"
