"""The toolbox the gateway and the chat will use: which tools a user is offered, running calls, the record, caps."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from accounts.models import User
from tests.tools import mcp_server
from tools import services
from tools.models import McpServer
from tools.models import ToolCall as Record
from tools.registry import Toolbox, ToolChoice, available_tools
from tools.results import ToolCall

pytestmark = pytest.mark.usefixtures("transactional_db")
EVERYTHING = ToolChoice(web_search=True, fetch=True, mcp_servers=None)


@pytest.fixture(autouse=True)
def _setup(search_engine: None) -> None:
    """Every test with the fake SearXNG as the engine and no cached tool list."""


async def test_a_user_is_offered_web_search_page_reading_and_the_mcp_tools_they_may_use(
    alice: User, local: McpServer
) -> None:
    specs = {spec.name: spec for spec in await available_tools(alice, EVERYTHING)}
    assert set(specs) == {"web_search", "fetch"} | {
        f"local__{t}" for t in ("add", "fail", "hang", "meet", "pixel", "weather")
    }
    add = specs["local__add"]
    assert (add.kind, add.server_id, add.remote_name, add.description) == ("mcp", local.pk, "add", "Add two integers.")
    assert add.as_function()["function"]["parameters"]["required"] == ["a", "b"]
    assert await available_tools(alice, ToolChoice()) == []
    only_local = await available_tools(alice, ToolChoice(mcp_servers=("local",)))
    assert {spec.kind for spec in only_local} == {"mcp"}


async def test_web_search_is_not_offered_without_an_engine(alice: User, settings: Any) -> None:
    settings.SEARXNG_URL = None
    assert [spec.name for spec in await available_tools(alice, EVERYTHING)] == ["fetch"]


async def test_another_users_server_is_neither_offered_nor_run(alice: User, bob: User, mcp_base: str) -> None:
    own = await _own_server(alice, f"{mcp_base}/mcp")
    assert own.owner_id == alice.pk
    bobs = await Toolbox.open(bob, ToolChoice(mcp_servers=("alices",)))
    assert bobs.specs == [] and bobs.unavailable == {}
    result = await bobs.run(ToolCall("alices__add", {"a": 1, "b": 2}))
    assert result.is_error and "no tool named alices__add" in result.text


async def test_a_users_own_server_on_an_internal_address_is_refused(alice: User, mcp_base: str) -> None:
    await _own_server(alice, f"{mcp_base}/mcp")
    toolbox = await Toolbox.open(alice, ToolChoice(mcp_servers=("alices",)))
    assert toolbox.specs == []
    assert "refused: 127.0.0.1 is a loopback address" in toolbox.unavailable["alices"]


async def _own_server(user: User, url: str) -> McpServer:
    from asgiref.sync import sync_to_async

    return await sync_to_async(services.add_own_server)(user, "alices", url)


async def test_a_call_runs_and_is_recorded(alice: User, local: McpServer) -> None:
    toolbox = await Toolbox.open(alice, EVERYTHING)
    result = await toolbox.run(ToolCall("local__add", {"a": 2, "b": 40}, "call_1"))
    assert (result.text, result.is_error) == ("42", False)
    failed = await toolbox.run(ToolCall("local__fail", {"reason": "x"}))
    assert failed.is_error
    rows = [(r.tool, r.kind, r.server_id, r.status, r.result_size) async for r in Record.objects.order_by("pk")]
    assert rows[0] == ("add", "mcp", local.pk, "ok", result.size)
    assert rows[1][:4] == ("fail", "mcp", local.pk, "tool_error")
    assert await Record.objects.filter(user=alice).acount() == 2


async def test_independent_calls_run_at_once(alice: User, local: McpServer) -> None:
    toolbox = await Toolbox.open(alice, EVERYTHING)
    # `meet` answers only when the other call is in the server too: run one after the other, both would fail.
    results = await toolbox.run_all([ToolCall("local__meet", {}), ToolCall("local__meet", {})])
    assert [r.text for r in results] == ["met", "met"]


async def test_cancelling_the_caller_cancels_the_tool_call_in_flight(alice: User, local: McpServer) -> None:
    toolbox = await Toolbox.open(alice, EVERYTHING)
    mcp_server.hang_started.clear()
    mcp_server.hang_cancelled.clear()
    task = asyncio.create_task(toolbox.run_all([ToolCall("local__hang", {})]))
    assert await asyncio.to_thread(mcp_server.hang_started.wait, 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(mcp_server.hang_cancelled.wait, 60)
    assert [r.status async for r in Record.objects.all()] == ["cancelled"]


async def test_web_search_and_page_reading_run_through_their_backends(alice: User, settings: Any, site: str) -> None:
    settings.TOOLS_INTERNAL_NETWORKS = [ipaddress.ip_network("127.0.0.1/32")]
    settings.TOOLS_SEARCH_RESULTS = 2
    settings.TOOLS_RESULT_MAX_CHARS = 100
    toolbox = await Toolbox.open(alice, EVERYTHING)
    found = await toolbox.run(ToolCall("web_search", {"query": "otters"}))
    assert [s.url for s in found.sources] == ["https://example.org/otters/1", "https://example.org/otters/2"]
    page = await toolbox.run(ToolCall("fetch", {"url": f"{site}/article"}))
    assert page.text.startswith("Sea otters hold hands") and page.truncated
    assert "[cut: the result had" in page.text


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (ToolCall("web_search", {}), "needs a non-empty 'query'"),
        (ToolCall("fetch", {"url": 3}), "needs a 'url'"),
        (ToolCall("fetch", {"url": "http://169.254.169.254/latest/meta-data/"}), "metadata"),
        (ToolCall("nope", {}), "no tool named nope"),
    ],
)
async def test_bad_calls_are_error_results_never_exceptions(alice: User, call: ToolCall, message: str) -> None:
    result = await (await Toolbox.open(alice, EVERYTHING)).run(call)
    assert result.is_error and message in result.text
