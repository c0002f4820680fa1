"""The MCP client against a real MCP server (the `mcp` SDK's) on loopback, over streamable HTTP and SSE."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import pytest

from core.clock import ManualClock
from tests.live_server import free_port
from tests.tools import mcp_server
from tests.tools.servers import serve
from tools import mcp_client
from tools.mcp_client import SSE, Endpoint, call_tool, forget_listings, list_tools
from tools.results import ToolError


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with serve(mcp_server.app()) as url:
        yield url


@pytest.fixture(autouse=True)
def _fresh_listings() -> Iterator[None]:
    forget_listings()
    yield
    forget_listings()


@pytest.fixture(params=["streamable_http", "sse"])
def endpoint(request: pytest.FixtureRequest, base: str) -> Endpoint:
    if request.param == SSE:
        return Endpoint(f"{base}/legacy/sse", transport=SSE, allow_internal=True, label="local")
    return Endpoint(f"{base}/mcp", allow_internal=True, label="local")


async def test_it_lists_the_servers_tools_with_their_schemas(endpoint: Endpoint) -> None:
    tools = {tool.name: tool for tool in await list_tools(endpoint)}
    assert set(tools) == {"add", "fail", "hang", "meet", "pixel", "weather"}
    assert tools["add"].description == "Add two integers."
    assert tools["add"].input_schema["properties"].keys() == {"a", "b"}


async def test_a_tool_that_answers_comes_back_as_text(endpoint: Endpoint) -> None:
    result = await call_tool(endpoint, "add", {"a": 2, "b": 3})
    assert (result.text, result.is_error) == ("5", False)


async def test_a_tool_that_fails_is_an_error_result_the_model_sees(endpoint: Endpoint) -> None:
    result = await call_tool(endpoint, "fail", {"reason": "testing"})
    assert result.is_error
    assert "fail" in result.text


async def test_an_image_result_keeps_the_image(endpoint: Endpoint) -> None:
    result = await call_tool(endpoint, "pixel", {})
    assert [(image.mime_type, base64.b64decode(image.data)) for image in result.images] == [
        ("image/png", mcp_server.PIXEL)
    ]


async def test_a_structured_result_keeps_the_data(endpoint: Endpoint) -> None:
    result = await call_tool(endpoint, "weather", {"city": "Oslo"})
    assert result.structured == {"city": "Oslo", "celsius": 21.5}
    assert '"Oslo"' in result.text


async def test_a_tool_that_hangs_is_a_tool_error_at_the_time_cap(endpoint: Endpoint, clock: ManualClock) -> None:
    mcp_server.hang_started.clear()
    call = asyncio.ensure_future(call_tool(endpoint, "hang", {}, time_cap=5))
    assert await asyncio.to_thread(mcp_server.hang_started.wait, 60)
    clock.advance(4.9)
    await asyncio.sleep(0.05)
    assert not call.done(), "the cap ran out before its time on the clock"
    clock.advance(0.2)
    with pytest.raises(ToolError, match="the tool hang of local did not answer within 5 seconds"):
        await asyncio.wait_for(call, 60)


async def test_a_listing_still_under_way_at_the_time_cap_is_a_tool_error(
    endpoint: Endpoint, clock: ManualClock
) -> None:
    listing = asyncio.ensure_future(list_tools(endpoint, time_cap=5))
    await asyncio.sleep(0)
    clock.advance(5)
    with pytest.raises(ToolError, match="did not list its tools within 5 seconds"):
        await asyncio.wait_for(listing, 60)


async def _wraps_its_cancellation() -> None:
    """Like the SDK's SSE transport when cancelled: its task group raises its tasks' errors as a group."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        raise ExceptionGroup("unhandled errors in a TaskGroup", [RuntimeError("read after close")]) from None


async def test_whatever_the_sdk_makes_of_the_caps_cancellation_is_the_time_cap(clock: ManualClock) -> None:
    async def capped() -> None:
        async with mcp_client._time_cap(5):
            await _wraps_its_cancellation()

    task = asyncio.ensure_future(capped())
    await asyncio.sleep(0)
    clock.advance(5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(task, 60)


async def test_a_cancellation_from_outside_is_never_taken_for_the_time_cap(clock: ManualClock) -> None:
    async def capped() -> None:
        async with mcp_client._time_cap(5):
            await asyncio.Event().wait()

    task = asyncio.ensure_future(capped())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelling_the_caller_cancels_the_call_on_the_server(base: str) -> None:
    mcp_server.hang_started.clear()
    mcp_server.hang_cancelled.clear()
    task = asyncio.create_task(call_tool(Endpoint(f"{base}/mcp", allow_internal=True), "hang", {}, time_cap=120))
    assert await asyncio.to_thread(mcp_server.hang_started.wait, 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(mcp_server.hang_cancelled.wait, 60)


async def test_an_unreachable_server_is_a_tool_error() -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ToolError, match="failed"):
        await call_tool(Endpoint(f"{gone}/mcp", allow_internal=True), "add", {"a": 1, "b": 1}, time_cap=20)


async def test_a_server_on_an_internal_address_is_refused_unless_an_admin_allowed_it(base: str) -> None:
    with pytest.raises(ToolError, match=r"refused: 127\.0\.0\.1 is a loopback address"):
        await list_tools(Endpoint(f"{base}/mcp"))
    with pytest.raises(ToolError, match="refused"):
        await call_tool(Endpoint(f"{base}/legacy/sse", transport=SSE), "add", {"a": 1, "b": 1})


async def test_a_server_needing_a_bearer_token_gets_it_from_the_headers_and_never_shows_it(base: str) -> None:
    url = f"{base}/secure/mcp"
    with pytest.raises(ToolError) as refused:
        await call_tool(Endpoint(url, headers={"Authorization": "Bearer wrong-token"}, allow_internal=True), "add", {})
    assert "wrong-token" not in str(refused.value)
    good = Endpoint(url, headers={"Authorization": f"Bearer {mcp_server.TOKEN}"}, allow_internal=True)
    assert (await call_tool(good, "add", {"a": 20, "b": 22})).text == "42"
    assert mcp_server.TOKEN not in repr(good)


async def test_the_tool_list_is_cached_for_its_ttl_by_the_clock(base: str, clock: ManualClock, settings: Any) -> None:
    settings.TOOLS_MCP_LIST_TTL = 60
    endpoint = Endpoint(f"{base}/mcp", allow_internal=True)
    await list_tools(endpoint)
    served = len(mcp_server.requests)
    clock.advance(59)
    await list_tools(endpoint)
    assert len(mcp_server.requests) == served
    clock.advance(2)
    await list_tools(endpoint)
    assert len(mcp_server.requests) > served
    served = len(mcp_server.requests)
    await list_tools(Endpoint(f"{base}/mcp", headers={"X-Other": "1"}, allow_internal=True))
    assert len(mcp_server.requests) > served


@pytest.mark.parametrize(
    "endpoint",
    [
        Endpoint("python -m evil_server", allow_internal=True),
        Endpoint("file:///usr/bin/evil", allow_internal=True),
        Endpoint("https://mcp.example/mcp", transport="stdio", allow_internal=True, label="x"),
    ],
)
async def test_nothing_but_a_network_server_is_ever_reached(endpoint: Endpoint) -> None:
    with pytest.raises(ToolError):
        await call_tool(endpoint, "add", {"a": 1, "b": 1})


def test_no_tools_module_can_start_a_process() -> None:
    import ast
    from pathlib import Path

    forbidden = {"subprocess", "mcp.client.stdio", "multiprocessing", "pty"}
    for path in (Path(__file__).resolve().parents[2] / "tools").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            assert not forbidden.intersection(names), path
            assert not (isinstance(node, ast.Name) and node.id in {"StdioServerParameters", "stdio_client"}), path
            assert not (isinstance(node, ast.Attribute) and node.attr in {"system", "popen", "execv", "spawnv"}), path


async def test_a_failed_listing_is_remembered_for_the_ttl_unless_asked_fresh(
    base: str, clock: ManualClock, settings: Any
) -> None:
    settings.TOOLS_MCP_LIST_TTL = 60
    endpoint = Endpoint(f"{base}/secure/mcp", allow_internal=True, label="secure")  # no token: 401
    with pytest.raises(ToolError):
        await list_tools(endpoint)
    served = len(mcp_server.requests)
    with pytest.raises(ToolError) as again:
        await list_tools(endpoint)
    assert "secure" in str(again.value)
    assert len(mcp_server.requests) == served, "a dead server is not asked again within the TTL"
    with pytest.raises(ToolError):
        await list_tools(endpoint, fresh=True)
    assert len(mcp_server.requests) > served
    clock.advance(61)
    served = len(mcp_server.requests)
    with pytest.raises(ToolError):
        await list_tools(endpoint)
    assert len(mcp_server.requests) > served
