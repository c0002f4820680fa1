"""The tool loop itself (tools.loop): a scripted model call (the function the gateway passes down) and real tools."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from accounts.models import User
from tests.tools import mcp_server
from tests.tools.servers import serve
from tools import services
from tools.loop import (
    Delta,
    LoopDone,
    ModelAnswer,
    StepDone,
    ToolFinished,
    ToolStarted,
    run_loop,
)
from tools.mcp_client import forget_listings
from tools.models import ToolCall as Record
from tools.registry import Toolbox, ToolChoice
from usage.tokens import Usage

pytestmark = pytest.mark.usefixtures("transactional_db")
ASK = [{"role": "user", "content": "Go"}]


@pytest.fixture(scope="module")
def mcp_base() -> Iterator[str]:
    with serve(mcp_server.app()) as url:
        yield url


@pytest.fixture
def local(mcp_base: str) -> None:
    forget_listings()
    services.put_global_server("local", f"{mcp_base}/mcp", None, allow_internal=True)


@pytest.fixture
async def toolbox(local: None, alice: User) -> Toolbox:
    return await Toolbox.open(alice, ToolChoice(mcp_servers=("local",)))


def call(name: str, arguments: str, call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


class Script:
    """The model, scripted: each call answers the next message; it records what it was given."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.seen: list[tuple[list[dict[str, Any]], list[str]]] = []

    async def __call__(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> AsyncIterator[Any]:
        self.seen.append((list(messages), [t["function"]["name"] for t in tools]))
        message = self.answers.pop(0)
        if message.get("content"):
            yield Delta(message["content"])
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        yield ModelAnswer({"role": "assistant", **message}, finish, Usage(10, 2))


async def collect(events: AsyncIterator[Any]) -> list[Any]:
    return [event async for event in events]


async def test_independent_calls_run_at_once_and_their_results_go_back_in_order(toolbox: Toolbox) -> None:
    # `meet` answers only once a second call of it is in: run one after the other, they would never answer.
    model = Script({"tool_calls": [call("local__meet", "{}", "a"), call("local__meet", "{}", "b")]}, {"content": "ok"})
    events = await asyncio.wait_for(collect(run_loop(model, ASK, toolbox)), 60)
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "StepDone",
        "ToolStarted",
        "ToolStarted",
        "ToolFinished",
        "ToolFinished",
        "Delta",
        "StepDone",
        "LoopDone",
    ]
    started = [e for e in events if isinstance(e, ToolStarted)]
    assert [(e.call_id, e.kind, e.server, e.tool) for e in started] == [
        ("a", "mcp", "local", "meet"),
        ("b", "mcp", "local", "meet"),
    ]
    messages, offered = model.seen[1]
    assert "local__meet" in offered
    assert [(m["role"], m.get("tool_call_id"), m.get("content")) for m in messages[-2:]] == [
        ("tool", "a", "met"),
        ("tool", "b", "met"),
    ]
    done = events[-1]
    assert isinstance(done, LoopDone)
    assert (done.stopped, done.steps, done.usage.prompt_tokens, done.message["content"]) == ("answer", 2, 20, "ok")
    assert [m["role"] for m in done.added] == ["assistant", "tool", "tool"]


async def test_closing_the_loop_cancels_the_tool_call_in_flight(toolbox: Toolbox) -> None:
    mcp_server.hang_started.clear()
    mcp_server.hang_cancelled.clear()
    model = Script({"tool_calls": [call("local__hang", "{}", "h")]})
    events = run_loop(model, ASK, toolbox)
    assert isinstance(await anext(events), StepDone)
    assert isinstance(await anext(events), ToolStarted)
    waiting = asyncio.ensure_future(anext(events))
    assert await asyncio.to_thread(mcp_server.hang_started.wait, 30)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await events.aclose()
    assert await asyncio.to_thread(mcp_server.hang_cancelled.wait, 30)
    statuses = [r.status async for r in Record.objects.all()]
    assert statuses == [Record.Status.CANCELLED]


async def test_the_time_limit_makes_a_slow_tool_an_error_and_the_next_step_the_last(toolbox: Toolbox) -> None:
    model = Script({"tool_calls": [call("local__hang", "{}", "h")]}, {"content": "gave up"})
    events = await asyncio.wait_for(collect(run_loop(model, ASK, toolbox, max_seconds=1)), 60)
    (finished,) = [e for e in events if isinstance(e, ToolFinished)]
    assert finished.state == "failed" and "did not answer" in finished.result.text
    assert model.seen[1][1] == []  # no tools offered on the last step
    done = events[-1]
    assert isinstance(done, LoopDone) and done.message["content"] == "gave up"


async def test_unreadable_arguments_and_images_reach_the_model_as_text(toolbox: Toolbox) -> None:
    model = Script(
        {"tool_calls": [call("local__add", "{not json", "x"), call("local__pixel", "{}", "p")]}, {"content": "ok"}
    )
    events = await asyncio.wait_for(collect(run_loop(model, ASK, toolbox)), 60)
    finished = {e.call_id: e for e in events if isinstance(e, ToolFinished)}
    assert finished["x"].state == "failed"
    assert len(finished["p"].result.images) == 1
    messages = model.seen[1][0]
    assert messages[-2]["content"] == "Error: the arguments of local__add are not a JSON object"
    assert messages[-1]["content"] == "[the tool returned 1 image(s): image/png]"
