"""CreateResponse -> a chat-completions request body (see the package's docstring)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.chat_completions.protocol import invalid_param
from gateway.errors import GatewayError
from gateway.responses_api.protocol import HOSTED_TOOL_TYPES, CreateResponse, FunctionTool, NamespaceTool
from gateway.translate_responses.names import ToolNames, tool_names
from tools.results import function_name

# Fields of CreateResponse the translation reads or deliberately drops; the rest (unknown ones such
# as `top_k`) go upstream as they came.
_RESPONSES_FIELDS = frozenset(CreateResponse.model_fields) | {"schema"}
# Items of earlier turns a chat upstream is not shown: reasoning it cannot read, and our hosted tools'
# bookkeeping (the answer that followed them carries what the model made of them).
_NOT_FOR_THE_MODEL = frozenset(("reasoning", "web_search_call", "file_search_call", "mcp_list_tools"))
_MCP_ITEMS = frozenset(("mcp_approval_request", "mcp_approval_response", "mcp_call"))


def unsupported(param: str, what: str) -> GatewayError:
    return invalid_param(param, f"{what} is not supported by this model (its upstream speaks chat completions)")


def _chat_part(part: dict[str, Any], param: str, role: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": part.get("text", "")}
    if kind == "refusal" and role == "assistant":
        return {"type": "refusal", "refusal": part.get("refusal", "")}
    if kind == "input_image" and role == "user":
        if not part.get("image_url"):
            raise unsupported(f"{param}.file_id", "an image given by file id (send an image_url or a data URL)")
        image: dict[str, Any] = {"url": part["image_url"]}
        if part.get("detail") in ("auto", "low", "high"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file" and role == "user":
        if not part.get("file_data"):
            raise unsupported(f"{param}.file_data", "a file given by id or URL (send its file_data)")
        file = {"file_data": part["file_data"], **({"filename": part["filename"]} if part.get("filename") else {})}
        return {"type": "file", "file": file}
    raise unsupported(f"{param}.type", f"a '{kind}' part in a {role} message")


def _chat_content(content: Any, param: str, role: str) -> Any:
    if isinstance(content, str):
        return content
    parts = [_chat_part(part, f"{param}[{i}]", role) for i, part in enumerate(content)]
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]
    return parts


def _tool_output(output: Any, param: str) -> str:
    if isinstance(output, str):
        return output
    texts = []
    for i, part in enumerate(output):
        if part.get("type") != "input_text":
            raise unsupported(f"{param}[{i}].type", f"a '{part.get('type')}' part in a function_call_output")
        texts.append(part.get("text", ""))
    return "".join(texts)


def _assistant_call(messages: list[dict[str, Any]], call_id: str, name: str, arguments: str) -> None:
    """A tool call joins the assistant message before it, or starts one."""
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _mcp_item(messages: list[dict[str, Any]], item: dict[str, Any], approvals: Mapping[str, str]) -> None:
    """MCP items of earlier turns (and this turn's approvals) as the calls and results a chat model reads.

    An approval request is the model's call (by the name its server's tool was offered under); this turn's
    answer to it is the result `approvals` holds (the call's output, or that it was declined); an earlier
    turn's answer is left out, as the `mcp_call` after it carries the output.
    """
    kind = item["type"]
    if kind == "mcp_approval_request":
        name = function_name(item["server_label"], item["name"], set())
        _assistant_call(messages, item["id"], name, item.get("arguments") or "{}")
    elif kind == "mcp_approval_response":
        if item["approval_request_id"] in approvals:
            messages.append(_tool_message(item["approval_request_id"], approvals[item["approval_request_id"]]))
    else:  # mcp_call
        error = item.get("error")
        output = item.get("output") if not error else f"Error: {json.dumps(error)}"
        call_id = item.get("approval_request_id") or item["id"]
        if not item.get("approval_request_id"):
            name = function_name(item["server_label"], item["name"], set())
            _assistant_call(messages, call_id, name, item.get("arguments") or "{}")
        messages.append(_tool_message(call_id, output or "(no output)"))


def _tool_message(call_id: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _add_item(
    messages: list[dict[str, Any]],
    item: dict[str, Any],
    param: str,
    references: Mapping[str, dict[str, Any]],
    names: ToolNames,
    approvals: Mapping[str, str],
) -> None:
    kind = item.get("type") or ("item_reference" if "role" not in item and "id" in item else "message")
    if kind == "message":
        role = "system" if item["role"] in ("system", "developer") else item["role"]
        messages.append({"role": role, "content": _chat_content(item["content"], f"{param}.content", role)})
    elif kind == "function_call":
        name = names.name_for(item.get("namespace"), item["name"])
        _assistant_call(messages, item["call_id"], name, item["arguments"])
    elif kind == "function_call_output":
        messages.append(_tool_message(item["call_id"], _tool_output(item["output"], f"{param}.output")))
    elif kind in _MCP_ITEMS:
        _mcp_item(messages, item, approvals)
    elif kind == "item_reference":
        referenced = references.get(item["id"])
        if referenced is None or referenced.get("type") == "item_reference":
            raise invalid_param(f"{param}.id", f"no earlier item has the id '{item['id']}'")
        _add_item(messages, referenced, param, references, names, approvals)
    elif kind not in _NOT_FOR_THE_MODEL:
        raise unsupported(f"{param}.type", f"a '{kind}' item")


def _check_approvals(request: CreateResponse, history: Sequence[dict[str, Any]]) -> None:
    """Each `mcp_approval_response` answers an `mcp_approval_request` of an earlier turn or of the input."""
    items = request.input_items()
    asked = {item.get("id") for item in [*history, *items] if item.get("type") == "mcp_approval_request"}
    for position, item in enumerate(items):
        if item.get("type") == "mcp_approval_response" and item["approval_request_id"] not in asked:
            param = f"input[{position}].approval_request_id"
            raise invalid_param(param, f"no mcp_approval_request has the id '{item['approval_request_id']}'")


def _chat_function(tool: FunctionTool, name: str) -> dict[str, Any]:
    function = tool.model_dump(exclude={"type"}, exclude_none=True)
    return {"type": "function", "function": {**function, "name": name}}


def _chat_tools(request: CreateResponse, names: ToolNames, hosted: bool) -> list[dict[str, Any]] | None:
    """The client's functions, namespaces flattened; hosted tools are left to the caller when it runs them."""
    tools = []
    for i, tool in enumerate(request.tools or ()):
        if isinstance(tool, FunctionTool):
            tools.append(_chat_function(tool, tool.name))
        elif isinstance(tool, NamespaceTool):
            for j, inner in enumerate(tool.tools):
                if not isinstance(inner, FunctionTool):
                    raise unsupported(f"tools[{i}].tools[{j}].type", f"the '{inner.type}' tool in a namespace")
                tools.append(_chat_function(inner, names.name_for(tool.name, inner.name)))
        elif not (hosted and tool.type in HOSTED_TOOL_TYPES):
            raise unsupported(f"tools[{i}].type", f"the '{tool.type}' tool")
    return tools or None


def _chat_tool_choice(choice: Any) -> Any:
    if choice is None or isinstance(choice, str):
        return choice
    if choice.type == "function":
        return {"type": "function", "function": {"name": choice.name}}
    if choice.type == "allowed_tools":
        allowed = []
        for i, tool in enumerate(choice.tools):
            if tool.get("type") != "function" or not tool.get("name"):
                raise unsupported(f"tool_choice.tools[{i}]", "allowing a tool other than a named function")
            allowed.append({"type": "function", "function": {"name": tool["name"]}})
        return {"type": "allowed_tools", "allowed_tools": {"mode": choice.mode, "tools": allowed}}
    raise unsupported("tool_choice.type", f"choosing a '{choice.type}' tool")


def _response_format(request: CreateResponse) -> dict[str, Any] | None:
    text_format = request.text.format if request.text else None
    if text_format is None or text_format.type == "text":
        return None
    if text_format.type == "json_object":
        return {"type": "json_object"}
    schema = text_format.model_dump(by_alias=True, exclude={"type"}, exclude_none=True)
    return {"type": "json_schema", "json_schema": schema}


def chat_request(
    request: CreateResponse,
    history: Sequence[dict[str, Any]] = (),
    references: Mapping[str, dict[str, Any]] | None = None,
    hosted: bool = False,
    approvals: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The chat-completions body serving `request` (model: the request's public id).

    `references` resolves `item_reference` items (by item id; default: the items of `history`).
    `hosted`: the caller runs the hosted tools (web search, MCP) and offers them itself; otherwise
    they are refused. `approvals`: the results of the MCP calls this turn's `mcp_approval_response`
    items answered (by approval request id). GatewayError 400 naming the param for what a chat
    upstream cannot do.
    """
    if request.prompt is not None:
        raise unsupported("prompt", "a stored prompt")
    known = references if references is not None else {item["id"]: item for item in history if item.get("id")}
    names = tool_names(request)
    _check_approvals(request, history)
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    for item in history:
        _add_item(messages, item, "previous_response_id", known, names, approvals or {})
    for position, item in enumerate(request.input_items()):
        param = f"input[{position}]" if isinstance(request.input, list) else "input"
        _add_item(messages, item, param, known, names, approvals or {})

    body: dict[str, Any] = {"model": request.model, "messages": messages}
    optional = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "user": request.user,
        "safety_identifier": request.safety_identifier,
        "prompt_cache_key": request.prompt_cache_key,
        "service_tier": request.service_tier,
        "max_completion_tokens": request.max_output_tokens,
        "reasoning_effort": request.reasoning.effort if request.reasoning else None,
        "verbosity": request.text.verbosity if request.text else None,
        "response_format": _response_format(request),
        "tools": _chat_tools(request, names, hosted),
        "tool_choice": _chat_tool_choice(request.tool_choice),
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    if body.get("tools") and request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.top_logprobs is not None:
        body["logprobs"] = True
        body["top_logprobs"] = request.top_logprobs
    for name, value in (request.model_extra or {}).items():
        if name not in _RESPONSES_FIELDS:
            body[name] = value
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body
