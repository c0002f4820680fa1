"""The tool loop's streams through the serving core, as the chat and a streaming client use them: the chat's
typed events (gateway.chat_completions.inprocess with `turn.tools`), keep-alives while a tool runs, and a
closed stream cancelling the tool call in flight (the MCP server's hanging tool)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from gateway.auth import Caller, find_usable_model
from gateway.chat_completions.inprocess import ChatTurn, Finished, Said, reply
from gateway.chat_completions.tool_loop import ChatCompletionsServing
from gateway.errors import GatewayError
from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.gateway.conftest import MODEL
from tests.tools import mcp_server
from tools.loop import ToolFinished, ToolStarted
from tools.models import McpServer
from tools.models import ToolCall as Record
from tools.registry import ToolChoice
from usage.ledger import flush_usage
from usage.models import UsageRecord

pytestmark = pytest.mark.usefixtures("search_engine")
ASK = [{"role": "user", "content": "What about otters?"}]


async def rows() -> list[tuple[str, int]]:
    await flush_usage()
    return [(row.source, row.status) async for row in UsageRecord.objects.order_by("pk")]


async def test_the_chat_gets_the_tools_events_between_the_text(chat: Caller, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("web_search", '{"query": "otters"}', id="call_s")]),
        Reply(content="Otters hold hands."),
    )
    model = await sync_to_async(find_usable_model)(MODEL)
    turn = ChatTurn(chat.user, MODEL, model, ASK, prompt_tokens=5, tools=ToolChoice(web_search=True, fetch=True))
    events = [event async for event in reply(turn)]
    started, finished = events[0], events[1]
    assert isinstance(started, ToolStarted) and (started.name, started.arguments) == ("web_search", {"query": "otters"})
    assert isinstance(finished, ToolFinished) and finished.state == "done"
    assert [s.url for s in finished.result.sources][:1] == ["https://example.org/otters/1"]
    assert "".join(e.text for e in events if isinstance(e, Said)) == "Otters hold hands."
    done = events[-1]
    assert isinstance(done, Finished)
    assert [m["role"] for m in done.added] == ["assistant", "tool"]
    assert done.added[1]["tool_call_id"] == "call_s"
    assert await rows() == [("chat", 200), ("chat", 200)]


async def test_the_chat_is_refused_another_users_server(chat: Caller, bob: User, mcp_base: str) -> None:
    await McpServer.objects.acreate(owner=bob, name="bobs", url=f"{mcp_base}/mcp")
    model = await sync_to_async(find_usable_model)(MODEL)
    turn = ChatTurn(chat.user, MODEL, model, ASK, prompt_tokens=5, tools=ToolChoice(mcp_servers=("bobs",)))
    with pytest.raises(GatewayError) as refused:
        [event async for event in reply(turn)]
    assert refused.value.param == "tools" and "bobs" in refused.value.message


async def test_closing_the_stream_cancels_the_hanging_tool_and_keep_alives_flow_meanwhile(
    chat: Caller, fake_upstream: FakeUpstream, local: McpServer, settings: Any
) -> None:
    mcp_server.hang_started.clear()
    mcp_server.hang_cancelled.clear()
    fake_upstream.queue(Reply(tool_calls=[ToolCall("local__hang", "{}")]))
    body = {"model": MODEL, "messages": ASK, "stream": True, "mcp_servers": ["local"]}
    stream = ChatCompletionsServing(chat, body, stream=True).stream(0.05)
    keepalives = 0
    async for chunk in stream:
        assert chunk is None, "the model said nothing: only keep-alives while the tool runs"
        keepalives += 1
        if mcp_server.hang_started.is_set() and keepalives >= 2:
            break
    await stream.aclose()
    assert await asyncio.to_thread(mcp_server.hang_cancelled.wait, 30)
    statuses = [record.status async for record in Record.objects.all()]
    assert statuses == [Record.Status.CANCELLED]
    assert await rows() == [("chat", 200)]
