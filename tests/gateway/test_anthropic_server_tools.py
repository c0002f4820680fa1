"""Anthropic's server tools (web_search_20250305, web_fetch_20250910) and MCP connector, run by us behind
/v1/messages, through the official anthropic SDK; the model is the scripted fake upstream (chat completions)."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from accounts.models import User
from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.gateway.conftest import MODEL, Gateway, wait_for_usage
from tests.tools import mcp_server
from tools import services
from tools.models import McpServer
from tools.models import ToolCall as Record

pytestmark = pytest.mark.usefixtures("search_engine")
ASK: Any = [{"role": "user", "content": "What about otters?"}]
WEB_SEARCH: Any = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
WEB_FETCH: Any = {"type": "web_fetch_20250910", "name": "web_fetch"}
WEATHER: Any = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
MCP_BETA = ["mcp-client-2025-04-04"]


def sdk(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.url, api_key=gateway.secret, max_retries=0, http_client=gateway.app.sdk_client()
    )


def tool_messages(body: dict[str, Any] | None) -> list[dict[str, Any]]:
    assert body is not None
    return [m for m in body["messages"] if m["role"] == "tool"]


def test_web_search_answers_with_server_tool_use_and_its_results(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("web_search", '{"query": "otters"}', id="srvtoolu_1")]),
        Reply(content="Otters hold hands."),
    )
    message = sdk(gateway).messages.create(model=MODEL, max_tokens=200, messages=ASK, tools=[WEB_SEARCH])
    assert [block.type for block in message.content] == ["server_tool_use", "web_search_tool_result", "text"]
    use, result, text = message.content
    assert use.type == "server_tool_use" and (use.id, use.name, use.input) == (
        "srvtoolu_1",
        "web_search",
        {"query": "otters"},
    )
    assert result.type == "web_search_tool_result" and result.tool_use_id == "srvtoolu_1"
    assert isinstance(result.content, list)
    assert [(r.title, r.url) for r in result.content][:1] == [("Result 1 for otters", "https://example.org/otters/1")]
    assert text.type == "text" and text.text == "Otters hold hands."
    assert message.stop_reason == "end_turn"
    assert message.usage.server_tool_use is not None and message.usage.server_tool_use.web_search_requests == 1
    first = fake_upstream.chat_requests()[-2]
    assert first.body is not None
    assert [t["function"]["name"] for t in first.body["tools"]] == ["web_search"]
    assert "Snippet 1" in tool_messages(fake_upstream.last.body)[0]["content"]
    assert len(wait_for_usage(2)) == 2


def test_a_later_turn_sends_the_search_and_its_results_back_to_the_model(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("web_search", '{"query": "otters"}', id="srvtoolu_1")]),
        Reply(content="Otters hold hands."),
        Reply(content="Yes, really."),
    )
    client = sdk(gateway)
    first = client.messages.create(model=MODEL, max_tokens=200, messages=ASK, tools=[WEB_SEARCH])
    history: Any = [*ASK, {"role": "assistant", "content": first.content}, {"role": "user", "content": "Really?"}]
    client.messages.create(model=MODEL, max_tokens=200, messages=history, tools=[WEB_SEARCH])
    sent = fake_upstream.last.body
    assert sent is not None
    roles = [(m["role"], m.get("tool_call_id")) for m in sent["messages"]]
    assert roles == [("user", None), ("assistant", None), ("tool", "srvtoolu_1"), ("assistant", None), ("user", None)]
    assert sent["messages"][1]["tool_calls"][0]["function"]["name"] == "web_search"
    assert "[1] Result 1 for otters\nhttps://example.org/otters/1\nSnippet 1" in sent["messages"][2]["content"]
    assert sent["messages"][3]["content"] == "Otters hold hands."


def test_web_search_streams_its_blocks(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("web_search", '{"query": "otters"}', id="srvtoolu_2")]),
        Reply(content="Otters hold hands.", chunks=3),
    )
    with sdk(gateway).messages.stream(model=MODEL, max_tokens=200, messages=ASK, tools=[WEB_SEARCH]) as stream:
        kinds = [event.type for event in stream]
        message = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert [block.type for block in message.content] == ["server_tool_use", "web_search_tool_result", "text"]
    use = message.content[0]
    assert use.type == "server_tool_use" and use.input == {"query": "otters"}
    assert message.content[2].type == "text" and message.content[2].text == "Otters hold hands."
    assert message.stop_reason == "end_turn"


def test_web_fetch_refuses_private_addresses_as_a_fetch_error_block(
    gateway: Gateway, fake_upstream: FakeUpstream, site: str
) -> None:
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("fetch", f'{{"url": "{site}/article"}}', id="srvtoolu_3")]),
        Reply(content="Could not read it."),
    )
    message = sdk(gateway).messages.create(model=MODEL, max_tokens=200, messages=ASK, tools=[WEB_FETCH])
    use, result, _text = message.content
    assert use.type == "server_tool_use" and use.name == "web_fetch"
    assert result.type == "web_fetch_tool_result"
    assert result.content.type == "web_fetch_tool_result_error"
    assert tool_messages(fake_upstream.last.body)[0]["content"].startswith("Error: the page is refused")


def test_the_clients_own_tool_comes_back_as_tool_use_beside_our_search(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(
        Reply(
            tool_calls=[
                ToolCall("web_search", '{"query": "paris"}', id="srvtoolu_4"),
                ToolCall("get_weather", '{"city": "Paris"}', id="toolu_5"),
            ]
        )
    )
    message = sdk(gateway).messages.create(model=MODEL, max_tokens=200, messages=ASK, tools=[WEB_SEARCH, WEATHER])
    assert [block.type for block in message.content] == ["server_tool_use", "web_search_tool_result", "tool_use"]
    assert message.stop_reason == "tool_use"
    call = message.content[2]
    assert call.type == "tool_use" and (call.id, call.name, call.input) == ("toolu_5", "get_weather", {"city": "Paris"})


def test_the_mcp_connector_runs_a_registered_servers_tool(
    gateway: Gateway, fake_upstream: FakeUpstream, local: McpServer
) -> None:
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("local__add", '{"a": 20, "b": 22}', id="mcptoolu_1")]), Reply(content="42")
    )
    servers: Any = [
        {"type": "url", "name": "local", "url": local.url, "tool_configuration": {"allowed_tools": ["add"]}}
    ]
    message = sdk(gateway).beta.messages.create(
        model=MODEL, max_tokens=200, messages=ASK, mcp_servers=servers, betas=MCP_BETA
    )
    assert [block.type for block in message.content] == ["mcp_tool_use", "mcp_tool_result", "text"]
    use, result, _text = message.content
    assert use.type == "mcp_tool_use" and (use.name, use.server_name, use.input) == ("add", "local", {"a": 20, "b": 22})
    assert result.type == "mcp_tool_result" and not result.is_error
    assert [part.text for part in result.content] == ["42"]  # type: ignore[union-attr]
    first = fake_upstream.chat_requests()[-2]
    assert first.body is not None and [t["function"]["name"] for t in first.body["tools"]] == ["local__add"]
    assert [(r.tool, r.server_id) for r in Record.objects.all()] == [("add", local.pk)]


def test_the_mcp_connector_never_reaches_another_users_server_or_an_internal_address(
    gateway: Gateway, fake_upstream: FakeUpstream, bob: User, mcp_base: str
) -> None:
    bobs = services.add_own_server(
        bob, "bobs", f"{mcp_base}/secure/mcp", {"Authorization": f"Bearer {mcp_server.TOKEN}"}
    )
    mcp_server.requests.clear()
    servers: Any = [{"type": "url", "name": "bobs", "url": bobs.url}]
    with pytest.raises(anthropic.BadRequestError) as refused:
        sdk(gateway).beta.messages.create(
            model=MODEL, max_tokens=200, messages=ASK, mcp_servers=servers, betas=MCP_BETA
        )
    assert "bobs" in refused.value.message and "refused" in refused.value.message
    assert mcp_server.requests == []  # bob's token never left, nothing reached the server
    assert fake_upstream.chat_requests() == []


def test_tokens_are_counted_for_a_request_with_our_server_tools(gateway: Gateway) -> None:
    counted = sdk(gateway).messages.count_tokens(model=MODEL, messages=ASK, tools=[WEB_SEARCH, WEB_FETCH, WEATHER])
    alone = sdk(gateway).messages.count_tokens(model=MODEL, messages=ASK, tools=[WEATHER])
    assert counted.input_tokens > alone.input_tokens > 0  # the server tools' definitions count too
