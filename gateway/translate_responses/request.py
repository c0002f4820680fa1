"""CreateResponse -> a chat-completions request body (see the package's docstring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.chat_completions.protocol import invalid_param
from gateway.errors import GatewayError
from gateway.responses_api.protocol import CreateResponse

# Fields of CreateResponse the translation reads or deliberately drops; the rest (unknown ones such
# as `top_k`) go upstream as they came.
_RESPONSES_FIELDS = frozenset(CreateResponse.model_fields) | {"schema"}


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


def _add_item(
    messages: list[dict[str, Any]], item: dict[str, Any], param: str, references: Mapping[str, dict[str, Any]]
) -> None:
    kind = item.get("type") or ("item_reference" if "role" not in item and "id" in item else "message")
    if kind == "message":
        role = "system" if item["role"] in ("system", "developer") else item["role"]
        messages.append({"role": role, "content": _chat_content(item["content"], f"{param}.content", role)})
    elif kind == "function_call":
        call = {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        content = _tool_output(item["output"], f"{param}.output")
        messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": content})
    elif kind == "item_reference":
        referenced = references.get(item["id"])
        if referenced is None or referenced.get("type") == "item_reference":
            raise invalid_param(f"{param}.id", f"no earlier item has the id '{item['id']}'")
        _add_item(messages, referenced, param, references)
    elif kind != "reasoning":
        raise unsupported(f"{param}.type", f"a '{kind}' item")


def _chat_tools(request: CreateResponse) -> list[dict[str, Any]] | None:
    if not request.tools:
        return None
    tools = []
    for i, tool in enumerate(request.tools):
        if tool.type != "function":
            raise unsupported(f"tools[{i}].type", f"the '{tool.type}' tool")
        function = tool.model_dump(exclude={"type"}, exclude_none=True)
        tools.append({"type": "function", "function": function})
    return tools


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
) -> dict[str, Any]:
    """The chat-completions body serving `request` (model: the request's public id).

    `references` resolves `item_reference` items (by item id; default: the items of `history`).
    GatewayError 400 naming the param for what a chat upstream cannot do.
    """
    if request.prompt is not None:
        raise unsupported("prompt", "a stored prompt")
    known = references if references is not None else {item["id"]: item for item in history if item.get("id")}
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    for item in history:
        _add_item(messages, item, "previous_response_id", known)
    for position, item in enumerate(request.input_items()):
        _add_item(messages, item, f"input[{position}]" if isinstance(request.input, list) else "input", known)

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
        "tools": _chat_tools(request),
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
