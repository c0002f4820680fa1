"""Anthropic's server-tool blocks both ways: the tools we ran as the blocks Anthropic documents, and those
blocks, sent back in a later turn's history, as chat messages.

    server_tool_use        {"id", "name": "web_search" | "web_fetch", "input"}
    web_search_tool_result {"tool_use_id", "content": [web_search_result...] | web_search_tool_result_error}
    web_fetch_tool_result  {"tool_use_id", "content": web_fetch_result (a document) | web_fetch_tool_result_error}
    mcp_tool_use           {"id", "name", "server_name", "input"}
    mcp_tool_result        {"tool_use_id", "is_error", "content": [text...]}

A web search result's `encrypted_content` is opaque to clients, as Anthropic's is; ours carries the
result's snippet (base64 JSON), so a later turn tells the model what the search found.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Any

from tools.loop import ToolFinished, ToolStarted
from tools.results import Source

# Anthropic's server tool names, and the names our tools are offered to the model under.
SERVER_TOOL_NAMES = {"web_search": "web_search", "fetch": "web_fetch"}
OUR_NAMES = {anthropic: ours for ours, anthropic in SERVER_TOOL_NAMES.items()}
USES = frozenset(("server_tool_use", "mcp_tool_use"))
RESULTS = frozenset(("web_search_tool_result", "web_fetch_tool_result", "mcp_tool_result"))
_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]")


def _opaque(source: Source) -> str:
    return base64.b64encode(json.dumps({"snippet": source.snippet}).encode()).decode()


def _snippet(encrypted: Any) -> str:
    try:
        decoded = json.loads(base64.b64decode(str(encrypted), validate=True))
    except (ValueError, binascii.Error):
        return ""  # Anthropic's own: only Anthropic reads it
    return str(decoded.get("snippet") or "") if isinstance(decoded, dict) else ""


def use_block(event: ToolStarted) -> dict[str, Any]:
    """The block announcing a tool call we run."""
    if event.kind == "mcp":
        return {
            "type": "mcp_tool_use",
            "id": event.call_id,
            "name": event.tool,
            "server_name": event.server,
            "input": event.arguments,
        }
    return {
        "type": "server_tool_use",
        "id": event.call_id,
        "name": SERVER_TOOL_NAMES[event.kind],
        "input": event.arguments,
    }


def result_block(event: ToolFinished) -> dict[str, Any]:
    """The block with a tool call's result (or its error, in the error shape of its kind)."""
    result = event.result
    if event.kind == "mcp":
        return {
            "type": "mcp_tool_result",
            "tool_use_id": event.call_id,
            "is_error": result.is_error,
            "content": [{"type": "text", "text": result.text}],
        }
    if event.kind == "web_search":
        content: Any = (
            {"type": "web_search_tool_result_error", "error_code": "unavailable"}
            if result.is_error
            else [
                {
                    "type": "web_search_result",
                    "url": source.url,
                    "title": source.title,
                    "encrypted_content": _opaque(source),
                    "page_age": None,
                }
                for source in result.sources
            ]
        )
        return {"type": "web_search_tool_result", "tool_use_id": event.call_id, "content": content}
    if result.is_error:
        content = {"type": "web_fetch_tool_result_error", "error_code": "url_not_accessible"}
    else:
        source = result.sources[0] if result.sources else Source("", str(event.arguments.get("url", "")))
        content = {
            "type": "web_fetch_result",
            "url": source.url,
            "content": {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": result.text},
                "title": source.title or None,
            },
            "retrieved_at": datetime.now(UTC).isoformat(),
        }
    return {"type": "web_fetch_tool_result", "tool_use_id": event.call_id, "content": content}


def server_counts(blocks: list[dict[str, Any]]) -> dict[str, int]:
    """Usage's `server_tool_use`: how many web searches and page reads the answer made."""
    names = [block.get("name") for block in blocks if block.get("type") == "server_tool_use"]
    return {"web_search_requests": names.count("web_search"), "web_fetch_requests": names.count("web_fetch")}


# --- history: the blocks a client sends back, as chat messages ------------------------------


def call_of(block: dict[str, Any]) -> dict[str, Any]:
    """A server_tool_use or mcp_tool_use block as the chat tool call the model made."""
    name = str(block.get("name") or "")
    if block.get("type") == "mcp_tool_use":
        name = _NOT_NAME.sub("_", f"{block.get('server_name') or ''}__{name}")[:64]
    else:
        name = OUR_NAMES.get(name, name)
    arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
    return {"id": str(block.get("id") or ""), "type": "function", "function": {"name": name, "arguments": arguments}}


def _search_text(content: Any) -> str:
    if not isinstance(content, list):
        return "Error: the web search failed"
    found = [
        f"[{n}] {item.get('title') or ''}\n{item.get('url') or ''}\n{_snippet(item.get('encrypted_content'))}".rstrip()
        for n, item in enumerate((i for i in content if isinstance(i, dict)), 1)
    ]
    return "\n\n".join(found) or "No results."


def _fetch_text(content: Any) -> str:
    if not isinstance(content, dict) or content.get("type") != "web_fetch_result":
        return "Error: the page could not be read"
    document = content.get("content") if isinstance(content.get("content"), dict) else {}
    source = document.get("source") if isinstance(document, dict) else None
    data = source.get("data") if isinstance(source, dict) else None
    return str(data) if isinstance(data, str) else "(the page as a file)"


def _mcp_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        content = "\n".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    text = str(content or "")
    return f"Error: {text}" if block.get("is_error") else text


def result_message(block: dict[str, Any]) -> dict[str, Any]:
    """A result block as the `tool` message the model read."""
    kind = block.get("type")
    if kind == "web_search_tool_result":
        text = _search_text(block.get("content"))
    elif kind == "web_fetch_tool_result":
        text = _fetch_text(block.get("content"))
    else:
        text = _mcp_text(block)
    return {"role": "tool", "tool_call_id": str(block.get("tool_use_id") or ""), "content": text}
