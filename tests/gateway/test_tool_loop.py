"""Chat completions with the server's tools (`"tools": true`, `mcp_servers`), through the openai SDK.

The scripted fake upstream plays the model calling tools; the tools are real: the MCP server of
tests/tools/mcp_server.py and the fake SearXNG on loopback, the page server for page reading.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import LanguageModel, Provider
from core.clock import ManualClock
from tests.fake_anthropic import AnthropicReply, FakeAnthropic, Text, ToolUse
from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.gateway.conftest import MODEL, Gateway, wait_for_usage
from tests.openai_schema import validate
from tests.tools import mcp_server
from tools import services
from tools.models import KeyTools, McpServer
from tools.models import ToolCall as Record
from usage.models import Limit

pytestmark = pytest.mark.usefixtures("search_engine")
ASK: Any = [{"role": "user", "content": "What about otters?"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


def offered(body: dict[str, Any] | None) -> list[str]:
    assert body is not None
    return [tool["function"]["name"] for tool in body.get("tools") or ()]


def wait_until(condition: Callable[[], bool], seconds: float = 60) -> bool:
    """Polls `condition` for up to `seconds` (a bound for a broken build, never a pace the test needs)."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def tool_messages(body: dict[str, Any] | None) -> list[dict[str, Any]]:
    assert body is not None
    return [m for m in body["messages"] if m["role"] == "tool"]


def test_tools_true_runs_web_search_and_answers_with_the_results(
    gateway: Gateway, fake_upstream: FakeUpstream, local: McpServer
) -> None:
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("web_search", '{"query": "otters"}', id="call_s")]),
        Reply(content="Otters hold hands [1]."),
    )
    completion = gateway.client().chat.completions.create(model=MODEL, messages=ASK, extra_body={"tools": True})
    assert completion.choices[0].message.content == "Otters hold hands [1]."
    assert completion.choices[0].finish_reason == "stop" and not completion.choices[0].message.tool_calls
    validate(completion.model_dump(exclude_unset=True), "CreateChatCompletionResponse")
    first, second = fake_upstream.chat_requests()[-2:]
    assert set(offered(first.body)) >= {"web_search", "fetch", "local__add", "local__hang"}
    (result,) = tool_messages(second.body)
    assert result["tool_call_id"] == "call_s"
    assert "[1] Result 1 for otters\nhttps://example.org/otters/1" in result["content"]
    assert second.body is not None and second.body["messages"][1]["tool_calls"][0]["id"] == "call_s"
    ran = completion.model_extra["server_tool_calls"]  # type: ignore[index]
    assert [(c["name"], c["state"], c["arguments"]) for c in ran] == [("web_search", "done", {"query": "otters"})]
    assert ran[0]["sources"][0]["url"] == "https://example.org/otters/1"
    rows = wait_for_usage(2)
    assert [(r.status, r.api_key_id) for r in rows] == [(200, gateway.key.pk)] * 2
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == sum(r.prompt_tokens for r in rows)
    (record,) = Record.objects.all()
    assert (record.tool, record.kind, record.status, record.api_key_id) == (
        "web_search",
        "web_search",
        "ok",
        gateway.key.pk,
    )
    assert record.result_size == len(result["content"])


def test_it_streams_the_answer_after_running_an_mcp_tool(
    gateway: Gateway, fake_upstream: FakeUpstream, local: McpServer
) -> None:
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("local__add", '{"a": 2, "b": 40}')]),
        Reply(content="It is 42", chunks=3),
    )
    stream = gateway.client().chat.completions.create(
        model=MODEL,
        messages=ASK,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"tools": False, "mcp_servers": ["local"]},
    )
    chunks = list(stream)
    for chunk in chunks:
        validate(chunk.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "It is 42"
    assert chunks[-2].choices[0].finish_reason == "stop"
    ran = chunks[-2].model_extra["server_tool_calls"]  # type: ignore[index]
    assert [(c["name"], c["server"], c["state"]) for c in ran] == [("add", "local", "done")]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    first = fake_upstream.chat_requests()[-2]
    assert first.body is not None and first.body["stream"] is True
    assert set(offered(first.body)) == {f"local__{t}" for t in ("add", "fail", "hang", "meet", "pixel", "weather")}
    (result,) = tool_messages(fake_upstream.last.body)
    assert result["content"] == "42"
    assert len(wait_for_usage(2)) == 2


def test_the_clients_own_tool_goes_back_to_it_and_ours_runs_first(
    gateway: Gateway, fake_upstream: FakeUpstream, local: McpServer
) -> None:
    fake_upstream.queue(
        Reply(
            tool_calls=[
                ToolCall("local__add", '{"a": 1, "b": 1}', id="call_ours"),
                ToolCall("get_weather", '{"city": "Paris"}', id="call_theirs"),
            ]
        )
    )
    completion = gateway.client().chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER_TOOL], extra_body={"mcp_servers": ["local"]}
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    assert [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls] == [  # type: ignore[union-attr]
        ("call_theirs", "get_weather", '{"city": "Paris"}')
    ]
    assert "get_weather" in offered(fake_upstream.last.body)
    assert len(fake_upstream.chat_requests()) == 1
    assert [(r.tool, r.status) for r in Record.objects.all()] == [("add", "ok")]


def test_the_clients_tool_call_streams_back_to_it(
    gateway: Gateway, fake_upstream: FakeUpstream, local: McpServer
) -> None:
    fake_upstream.queue(Reply(tool_calls=[ToolCall("get_weather", '{"city": "Oslo"}', id="call_w")]))
    stream = gateway.client().chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER_TOOL], stream=True, extra_body={"mcp_servers": ["local"]}
    )
    chunks = list(stream)
    last = chunks[-1].choices[0]
    assert last.finish_reason == "tool_calls"
    assert last.delta.tool_calls is not None and last.delta.tool_calls[0].function is not None
    assert (last.delta.tool_calls[0].id, last.delta.tool_calls[0].function.arguments) == ("call_w", '{"city": "Oslo"}')


def test_another_users_mcp_server_is_refused(
    gateway: Gateway, fake_upstream: FakeUpstream, bob: User, mcp_base: str
) -> None:
    services.add_own_server(bob, "bobs", f"{mcp_base}/mcp")
    with pytest.raises(openai.BadRequestError) as refused:
        gateway.client().chat.completions.create(model=MODEL, messages=ASK, extra_body={"mcp_servers": ["bobs"]})
    assert refused.value.body["param"] == "mcp_servers"  # type: ignore[index]
    assert "bobs" in refused.value.message
    assert fake_upstream.chat_requests() == []
    # With "tools": true, bob's server is not among alice's tools either.
    fake_upstream.queue(Reply(content="fine"))
    gateway.client().chat.completions.create(model=MODEL, messages=ASK, extra_body={"tools": True})
    assert not any(name.startswith("bobs") for name in offered(fake_upstream.last.body))


def test_a_failing_and_a_slow_mcp_tool_are_errors_the_model_reads(
    gateway: Gateway, fake_upstream: FakeUpstream, local: McpServer, settings: Any, clock: ManualClock
) -> None:
    settings.TOOLS_MCP_TIMEOUT = 1.0
    mcp_server.hang_started.clear()
    mcp_server.hang_cancelled.clear()
    fake_upstream.queue(
        Reply(
            tool_calls=[
                ToolCall("local__fail", '{"reason": "broken"}', id="call_f"),
                ToolCall("local__hang", "{}", id="call_h"),
            ]
        ),
        Reply(content="Both failed."),
    )
    create = gateway.client().chat.completions.create
    with ThreadPoolExecutor(1) as pool:
        asked = pool.submit(create, model=MODEL, messages=ASK, extra_body={"tools": True})
        # The cap runs out on the clock, once the failing tool has answered and the hanging one is waiting.
        assert mcp_server.hang_started.wait(60)
        assert wait_until(lambda: Record.objects.filter(tool="fail").exists())
        clock.advance(1)
        completion = asked.result(60)
    assert completion.choices[0].message.content == "Both failed."
    failed, slow = tool_messages(fake_upstream.last.body)
    assert failed["tool_call_id"] == "call_f" and failed["content"] == "Error: Error executing tool fail"
    assert slow["tool_call_id"] == "call_h" and "did not answer within 1 seconds" in slow["content"]
    states = {c["name"]: c["state"] for c in completion.model_extra["server_tool_calls"]}  # type: ignore[index]
    assert states == {"fail": "failed", "hang": "failed"}
    assert mcp_server.hang_cancelled.wait(10)


def test_page_reading_refuses_private_addresses(gateway: Gateway, fake_upstream: FakeUpstream, site: str) -> None:
    arguments = json.dumps({"url": f"{site}/article"})
    fake_upstream.queue(Reply(tool_calls=[ToolCall("fetch", arguments)]), Reply(content="Could not read it."))
    gateway.client().chat.completions.create(model=MODEL, messages=ASK, extra_body={"tools": True})
    (result,) = tool_messages(fake_upstream.last.body)
    assert result["content"].startswith("Error: the page is refused")
    assert [(r.tool, r.status) for r in Record.objects.all()] == [("fetch", "failed")]


def test_the_step_limit_ends_the_loop_with_a_last_call_without_our_tools(
    gateway: Gateway, fake_upstream: FakeUpstream, settings: Any
) -> None:
    settings.TOOLS_MAX_STEPS = 2
    search = Reply(tool_calls=[ToolCall("web_search", '{"query": "again"}')])
    fake_upstream.queue(search, Reply(content="Enough searching."))
    completion = gateway.client().chat.completions.create(model=MODEL, messages=ASK, extra_body={"tools": True})
    assert completion.choices[0].message.content == "Enough searching."
    first, last = fake_upstream.chat_requests()[-2:]
    assert "web_search" in offered(first.body)
    assert last.body is not None and "tools" not in last.body
    assert len(wait_for_usage(2)) == 2


def test_limits_are_checked_before_each_step(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    Limit.objects.create(user=gateway.user, requests_per_minute=1)
    fake_upstream.queue(Reply(tool_calls=[ToolCall("web_search", '{"query": "otters"}')]))
    with pytest.raises(openai.RateLimitError):
        gateway.client().chat.completions.create(model=MODEL, messages=ASK, extra_body={"tools": True})
    assert len(fake_upstream.chat_requests()) == 1
    rows = wait_for_usage(2)
    assert [r.status for r in rows] == [200, 429]


def test_the_users_tool_limit_refuses_calls_beyond_it(
    gateway: Gateway, fake_upstream: FakeUpstream, settings: Any
) -> None:
    settings.TOOLS_CALLS_PER_HOUR = 1
    calls = [ToolCall("web_search", '{"query": "one"}', id="c1")]
    fake_upstream.queue(Reply(tool_calls=calls), Reply(tool_calls=calls), Reply(content="done"))
    gateway.client().chat.completions.create(model=MODEL, messages=ASK, extra_body={"tools": True})
    results = tool_messages(fake_upstream.last.body)
    assert "Result 1 for one" in results[0]["content"]
    assert results[1]["content"].startswith("Error: the tool limit is reached")
    assert sorted(r.status for r in Record.objects.all()) == ["ok", "refused"]


def test_a_key_narrowed_to_fewer_tools_is_offered_only_those(
    gateway: Gateway, fake_upstream: FakeUpstream, local: McpServer
) -> None:
    narrow, secret = create_key(gateway.user, "narrow")
    KeyTools.objects.create(key=narrow, web_search=False, fetch=True, mcp_servers=[])
    fake_upstream.queue(Reply(content="ok"))
    gateway.client(secret).chat.completions.create(model=MODEL, messages=ASK, extra_body={"tools": True})
    assert offered(fake_upstream.last.body) == ["fetch"]
    with pytest.raises(openai.BadRequestError):
        gateway.client(secret).chat.completions.create(model=MODEL, messages=ASK, extra_body={"mcp_servers": ["local"]})


def test_a_plain_request_still_takes_tools_false_and_refuses_bad_mcp_servers(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="plain"))
    gateway.client().chat.completions.create(model=MODEL, messages=ASK, extra_body={"tools": False})
    assert fake_upstream.last.body is not None and "tools" not in fake_upstream.last.body
    with pytest.raises(openai.BadRequestError) as bad:
        gateway.client().chat.completions.create(model=MODEL, messages=ASK, extra_body={"mcp_servers": "local"})
    assert bad.value.body["param"] == "mcp_servers"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as many:
        gateway.client().chat.completions.create(model=MODEL, messages=ASK, n=2, extra_body={"tools": True})
    assert many.value.body["param"] == "n"  # type: ignore[index]


def test_the_loop_runs_on_an_anthropic_upstream_too(
    gateway: Gateway, fake_anthropic: FakeAnthropic, local: McpServer
) -> None:
    provider = Provider.objects.create(name="anthropic", kind=Provider.Kind.ANTHROPIC, base_url=fake_anthropic.base_url)
    provider.set_api_key("sk-ant-upstream-secret-0123456789")
    provider.save()
    fake_anthropic.api_key = "sk-ant-upstream-secret-0123456789"
    LanguageModel.objects.create(public_id="anthropic/claude", provider=provider, upstream_model="claude-x")
    fake_anthropic.queue(
        AnthropicReply(content=[ToolUse("local__add", {"a": 40, "b": 2}, id="toolu_1")]),
        AnthropicReply(content=[Text("It is 42.")]),
    )
    stream = gateway.client().chat.completions.create(
        model="anthropic/claude", messages=ASK, stream=True, extra_body={"mcp_servers": ["local"]}
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "It is 42."
    second = fake_anthropic.requests[-1].body
    assert second is not None
    assert second["messages"][-1]["content"][0] == {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}
    assert [t["name"] for t in fake_anthropic.requests[0].body["tools"]][:1] == ["local__add"]  # type: ignore[index]
