"""The MCP approval round trip of the Responses API, as OpenAI specifies it.

A call of an MCP tool that needs approval (`require_approval`) ends the turn with an `mcp_approval_request`
item; the client answers in its next request with an `mcp_approval_response` item (`approval_request_id`,
`approve`), continuing with `previous_response_id` or sending the request item back itself. An approved
call is run then, before the model is called again, and is an `mcp_call` item carrying the approval's id;
a declined one is told to the model as declined.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.responses_api.protocol import CreateResponse
from tools.loop import tool_message
from tools.registry import Toolbox
from tools.results import ToolCall, ToolResult, ToolSpec

DECLINED = "The user declined this call: it was not run."


@dataclass
class Approved:
    """An approval request answered: the call's arguments and result (None: declined)."""

    request: dict[str, Any]
    result: ToolResult | None
    arguments: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """What the model reads as the call's result."""
        if self.result is None:
            return DECLINED
        return str(tool_message(self.request["id"], self.result)["content"])


def listing(spec: ToolSpec) -> dict[str, Any]:
    """An MCP server's tool as an `mcp_list_tools` item lists it."""
    return {"name": spec.remote_name, "description": spec.description, "input_schema": spec.parameters}


def _arguments(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


async def run_approved(toolbox: Toolbox, request: CreateResponse, history: Sequence[dict[str, Any]]) -> list[Approved]:
    """This turn's answers to approval requests (each answering a known request: the translation checked),
    the approved calls run."""
    items = request.input_items()
    asked = {item["id"]: item for item in [*history, *items] if item.get("type") == "mcp_approval_request"}
    answered: list[Approved] = []
    for item in items:
        if item.get("type") != "mcp_approval_response":
            continue
        request_item = asked[item["approval_request_id"]]
        arguments = _arguments(request_item.get("arguments") or "")
        if not item["approve"]:
            answered.append(Approved(request_item, None, arguments))
            continue
        label, name = request_item["server_label"], request_item["name"]
        spec = next(
            (s for s in toolbox.specs if s.kind == "mcp" and s.server_name == label and s.remote_name == name), None
        )
        if spec is None:
            result = ToolResult.error(f"the tool {name} of the MCP server {label} is not offered in this request")
        else:
            result = await toolbox.run(ToolCall(spec.name, arguments, request_item["id"]))
        answered.append(Approved(request_item, result, arguments))
    return answered
