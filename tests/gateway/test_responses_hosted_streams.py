"""The Responses API's hosted tools through the serving core as a streaming client reads them: keep-alives
while a tool runs, and a closed stream cancelling the MCP call in flight (the MCP server's hanging tool)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.auth import Caller
from gateway.responses_api.serving import ResponsesServing
from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.gateway.conftest import MODEL
from tests.tools import mcp_server
from tools.models import McpServer
from tools.models import ToolCall as Record

pytestmark = pytest.mark.usefixtures("search_engine")


async def test_closing_the_stream_cancels_the_hanging_mcp_call(
    chat: Caller, fake_upstream: FakeUpstream, local: McpServer
) -> None:
    mcp_server.hang_started.clear()
    mcp_server.hang_cancelled.clear()
    fake_upstream.queue(Reply(tool_calls=[ToolCall("local__hang", "{}")]))
    tools: Any = [{"type": "mcp", "server_label": "local", "require_approval": "never", "allowed_tools": ["hang"]}]
    body = {"model": MODEL, "input": "wait", "stream": True, "tools": tools, "store": False}
    stream = ResponsesServing(chat, body, stream=True).stream(0.05)
    kinds: list[str] = []
    keepalives = 0
    async for event in stream:
        if event is None:
            keepalives += 1
            if mcp_server.hang_started.is_set() and keepalives >= 2:
                break
        else:
            kinds.append(event["type"])
    await stream.aclose()
    assert await asyncio.to_thread(mcp_server.hang_cancelled.wait, 30)
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.mcp_call.in_progress" and "response.completed" not in kinds
    assert [record.status async for record in Record.objects.all()] == [Record.Status.CANCELLED]
