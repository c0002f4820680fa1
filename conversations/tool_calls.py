"""The tool calls of a chat reply: the one stored shape (Message.tool_calls), and that shape sent back upstream.

Each call, in the order the model made them:

    {"id": "call_1", "step": 1, "name": "web_search", "tool": "web_search", "server": "",
     "arguments": {...}, "state": "running" | "done" | "failed" | "cancelled",
     "result": "what the model read", "sources": [{"title", "url", "snippet"}], "duration_ms": 120}

`name` is the function name the model called (what `data-tool` shows), `tool` the tool's own name (on its
MCP server, `server`). A reply's history upstream is, step by step, an assistant message carrying that
step's `tool_calls`, one `tool` message per call with its result, and last the reply's text: what chat
completions requires, so the model sees what it asked and what came back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
# What is kept of a result (the model's own copy is capped by tools.registry at TOOLS_RESULT_MAX_CHARS).
MAX_RESULT_CHARS = 50_000
MAX_SOURCES = 20
_ENDED_WITHOUT_RESULT = {CANCELLED: "(the call was cancelled)", RUNNING: "(the call did not finish)"}


def started(
    call_id: str, name: str, arguments: Any, *, step: int = 1, tool: str = "", server: str = ""
) -> dict[str, Any]:
    """A call the model just made, running."""
    return {
        "id": call_id,
        "step": step,
        "name": name,
        "tool": tool or name,
        "server": server,
        "arguments": arguments if isinstance(arguments, dict) else {},
        "state": RUNNING,
        "result": "",
        "sources": [],
        "duration_ms": None,
    }


def _source(source: Any) -> dict[str, str]:
    if isinstance(source, dict):
        get = source.get
        return {"title": str(get("title") or ""), "url": str(get("url") or ""), "snippet": str(get("snippet") or "")}
    return {
        "title": str(getattr(source, "title", "") or ""),
        "url": str(getattr(source, "url", "") or ""),
        "snippet": str(getattr(source, "snippet", "") or ""),
    }


def finished(
    call: dict[str, Any], *, result: str, failed: bool, duration_ms: int, sources: Iterable[Any] = ()
) -> dict[str, Any]:
    """`call` with its outcome (changed in place, and returned)."""
    kept = [_source(s) for s in sources]
    call.update(
        state=FAILED if failed else DONE,
        result=(result or "")[:MAX_RESULT_CHARS],
        sources=[s for s in kept if s["url"].startswith(("http://", "https://"))][:MAX_SOURCES],
        duration_ms=max(0, int(duration_ms)),
    )
    return call


def cancel_running(calls: Iterable[dict[str, Any]]) -> None:
    """A reply stopped or failed: what was still running never will."""
    for call in calls:
        if call.get("state") == RUNNING:
            call["state"] = CANCELLED


def find(calls: Sequence[dict[str, Any]], call_id: str) -> dict[str, Any] | None:
    """The latest running call of that id (some models number their calls anew at each step)."""
    return next((call for call in reversed(calls) if call.get("id") == call_id and call.get("state") == RUNNING), None)


def upstream_messages(content: str, calls: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A stored reply as chat-completions messages: each step's calls and their results, then its text."""
    messages: list[dict[str, Any]] = []
    steps: dict[int, list[dict[str, Any]]] = {}
    for call in calls:
        if isinstance(call, dict) and call.get("id") and call.get("name"):
            steps.setdefault(int(call.get("step") or 1), []).append(call)
    for step in sorted(steps):
        asked = steps[step]
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments") or {})},
                    }
                    for call in asked
                ],
            }
        )
        for call in asked:
            result = call.get("result") or _ENDED_WITHOUT_RESULT.get(call.get("state", ""), "")
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
    if content:
        messages.append({"role": "assistant", "content": content})
    return messages
