"""The output items of the hosted tools we run for a Responses request, in OpenAI's shapes (pure).

    web_search_call  {id, type, status, action: {type: "search", query, queries, sources?}}
    file_search_call {id, type, status, queries, results}   and file_citation annotations on the answer's text
    mcp_list_tools   {id, type, server_label, tools: [{name, description, input_schema, annotations}], error}
    mcp_call         {id, type, server_label, name, arguments, output, error, status, approval_request_id}
    mcp_approval_request {id, type, server_label, name, arguments}

Each is added to a ResponseStream with its events (`response.web_search_call.in_progress` / `.searching`
/ `.completed`, `response.file_search_call.in_progress` / `.searching` / `.completed`,
`response.mcp_list_tools.in_progress` / `.completed` / `.failed`,
`response.mcp_call_arguments.delta` / `.done`, `response.mcp_call.in_progress` / `.completed` / `.failed`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.translate_responses.stream import ResponseStream

Events = list[dict[str, Any]]


def web_search_started(stream: ResponseStream, item_id: str, query: str) -> tuple[dict[str, Any], Events]:
    action = {"type": "search", "query": query, "queries": [query] if query else []}
    item = {"id": item_id, "type": "web_search_call", "status": "in_progress", "action": action}
    events = stream.open_item(item, "response.web_search_call.in_progress")
    item["status"] = "searching"
    return item, events + stream.progress(item, "response.web_search_call.searching")


def web_search_finished(
    stream: ResponseStream, item: dict[str, Any], failed: bool, sources: Sequence[str] | None
) -> Events:
    """`sources`: the result's URLs, when the request's `include` asked for `web_search_call.action.sources`."""
    item["status"] = "failed" if failed else "completed"
    if sources is not None:
        item["action"]["sources"] = [{"type": "url", "url": url} for url in sources]
    return stream.close_item(item, "response.web_search_call.completed")


def file_search_started(stream: ResponseStream, item_id: str, query: str) -> tuple[dict[str, Any], Events]:
    item = {"id": item_id, "type": "file_search_call", "status": "in_progress", "queries": [query], "results": None}
    events = stream.open_item(item, "response.file_search_call.in_progress")
    item["status"] = "searching"
    return item, events + stream.progress(item, "response.file_search_call.searching")


def file_search_finished(
    stream: ResponseStream, item: dict[str, Any], failed: bool, results: Sequence[dict[str, Any]] | None
) -> Events:
    """`results` ({file_id, filename, text, score, attributes}): when `include` asked for
    `file_search_call.results`."""
    item["status"] = "failed" if failed else "completed"
    if results is not None:
        item["results"] = list(results)
    return stream.close_item(item, "response.file_search_call.completed")


_CITED = re.compile(r"\[(\d{1,4}(?:\s*,\s*\d{1,4})*)\]")


def file_citations(text: str, files: Mapping[int, tuple[str, str]]) -> list[dict[str, Any]]:
    """A `file_citation` for each passage number the text cites (`[2]`, `[1, 3]`) that `files` knows (number ->
    (file id, filename)); its `index` is where the citation stands in the text."""
    citations = []
    for match in _CITED.finditer(text):
        for number in match.group(1).split(","):
            cited = files.get(int(number))
            if cited is not None:
                file_id, filename = cited
                citations.append(
                    {"type": "file_citation", "file_id": file_id, "index": match.start(), "filename": filename}
                )
    return citations


def mcp_tools_listed(
    stream: ResponseStream, item_id: str, label: str, tools: Sequence[dict[str, Any]], error: str | None
) -> Events:
    """A server's listing, announced and done at once (it was listed before the model was called)."""
    item: dict[str, Any] = {"id": item_id, "type": "mcp_list_tools", "server_label": label, "tools": []}
    events = stream.open_item(item, "response.mcp_list_tools.in_progress")
    item.update(tools=[_listed(tool) for tool in tools], error=error)
    ended = "response.mcp_list_tools.failed" if error else "response.mcp_list_tools.completed"
    return events + stream.close_item(item, ended)


def _listed(tool: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": tool["name"],
        "description": tool.get("description"),
        "input_schema": tool.get("input_schema") or {"type": "object"},
        "annotations": tool.get("annotations"),
    }


def mcp_call_started(
    stream: ResponseStream,
    item_id: str,
    label: str,
    name: str,
    arguments: dict[str, Any],
    approval_request_id: str | None = None,
) -> tuple[dict[str, Any], Events]:
    text = json.dumps(arguments)
    item: dict[str, Any] = {
        "id": item_id,
        "type": "mcp_call",
        "server_label": label,
        "name": name,
        "arguments": text,
        "output": None,
        "error": None,
        "status": "in_progress",
        "approval_request_id": approval_request_id,
    }
    events = stream.open_item(item)
    events += stream.progress(item, "response.mcp_call_arguments.delta", delta=text)
    events += stream.progress(item, "response.mcp_call_arguments.done", arguments=text)
    item["status"] = "calling"
    return item, events + stream.progress(item, "response.mcp_call.in_progress")


def mcp_call_finished(stream: ResponseStream, item: dict[str, Any], text: str, failed: bool) -> Events:
    if failed:
        item.update(status="failed", error={"type": "mcp_tool_execution_error", "content": [_text(text)]})
        return stream.close_item(item, "response.mcp_call.failed")
    item.update(status="completed", output=text)
    return stream.close_item(item, "response.mcp_call.completed")


def _text(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def approval_requested(stream: ResponseStream, item_id: str, label: str, name: str, arguments: str) -> Events:
    """A call waiting for the client's approval: an `mcp_approval_request` item, added and done."""
    item = {"id": item_id, "type": "mcp_approval_request", "server_label": label, "name": name, "arguments": arguments}
    return stream.open_item(item) + stream.close_item(item)
