"""Chat completion -> Response, and the Response's shapes the stream reuses (see the package's docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.chat_completions.protocol import reasoning_text
from gateway.responses_api.protocol import CreateResponse
from gateway.translate_responses.names import tool_names


@dataclass(frozen=True)
class Ids:
    """The identity of one response: its id (`resp_...`), creation and completion times (unix s)."""

    response_id: str
    created_at: int
    completed_at: int | None = None

    @property
    def suffix(self) -> str:
        return self.response_id.removeprefix("resp_")

    def item(self, prefix: str, position: int) -> str:
        return f"{prefix}_{self.suffix}_{position}"


def response_shell(request: CreateResponse, ids: Ids, model: str) -> dict[str, Any]:
    """A Response echoing the request, `in_progress`, with no output yet (the order of OpenAI's answers)."""
    reasoning = request.reasoning
    return {
        "id": ids.response_id,
        "object": "response",
        "created_at": ids.created_at,
        "status": "in_progress",
        "background": False,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": request.max_tool_calls,
        "model": model,
        "output": [],
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "prompt_cache_key": request.prompt_cache_key,
        "reasoning": {
            "effort": reasoning.effort if reasoning else None,
            "summary": reasoning.summary if reasoning else None,
        },
        "safety_identifier": request.safety_identifier,
        "service_tier": request.service_tier or "default",
        "store": request.stores(),
        "temperature": request.temperature if request.temperature is not None else 1.0,
        "text": request.text.model_dump(by_alias=True, exclude_none=True)
        if request.text and request.text.format
        else {"format": {"type": "text"}},
        "tool_choice": request.tool_choice.model_dump(exclude_none=True)
        if request.tool_choice is not None and not isinstance(request.tool_choice, str)
        else request.tool_choice or "auto",
        "tools": [_echo_tool(tool.model_dump(exclude_none=True)) for tool in request.tools or ()],
        "top_logprobs": request.top_logprobs or 0,
        "top_p": request.top_p if request.top_p is not None else 1.0,
        "truncation": request.truncation or "disabled",
        **({"user": request.user} if request.user is not None else {}),  # the schema has no null here
        "metadata": request.metadata or {},
    }


def _echo_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") == "function":
        return {"parameters": None, "strict": None, **tool}
    if tool.get("type") == "mcp":
        # An MCP server's credentials go to that server alone: never echoed, so never stored.
        return {key: value for key, value in tool.items() if key not in ("authorization", "headers")}
    return tool


def response_usage(usage: Any) -> dict[str, Any] | None:
    """Chat usage (prompt/completion tokens) as the Responses API counts it (input/output tokens)."""
    if not isinstance(usage, dict):
        return None
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    converted: dict[str, Any] = {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": int(prompt_details.get("cached_tokens") or 0),
            "cache_write_tokens": int(prompt_details.get("cache_write_tokens") or 0),
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }
    if usage.get("estimated"):
        converted["estimated"] = True  # ours: counted by the gateway, the upstream reported none
    return converted


def as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _logprobs(choice: dict[str, Any]) -> list[dict[str, Any]]:
    tokens = (choice.get("logprobs") or {}).get("content") or []

    def one(entry: dict[str, Any]) -> dict[str, Any]:
        token = str(entry.get("token", ""))
        data = entry.get("bytes")
        return {"token": token, "logprob": entry.get("logprob", 0.0), "bytes": data or list(token.encode())}

    return [{**one(entry), "top_logprobs": [one(top) for top in entry.get("top_logprobs") or []]} for entry in tokens]


def text_part(text: str, logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def finished(finish_reason: Any) -> tuple[str, dict[str, str] | None]:
    """The response's status and incomplete_details for a chat finish_reason."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def response_from_completion(
    request: CreateResponse, completion: dict[str, Any], ids: Ids, model: str
) -> dict[str, Any]:
    """The Response for a (non-streamed) chat completion: its first choice, as output items."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = as_object(choice.get("message"))
    status, incomplete = finished(choice.get("finish_reason"))
    item_status = "incomplete" if status == "incomplete" else "completed"
    output: list[dict[str, Any]] = []
    if reasoning := reasoning_text(message):
        output.append({"id": ids.item("rs", 0), "type": "reasoning", "summary": [summary(reasoning)]})
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    parts = [text_part(content, _logprobs(choice))] if content else []
    if message.get("refusal"):
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    tool_calls = [call for call in message.get("tool_calls") or () if isinstance(call, dict)]
    names = tool_names(request)
    if parts or not tool_calls:
        output.append(message_item(ids.item("msg", 0), parts or [text_part("")], item_status))
    for position, call in enumerate(tool_calls):
        function = call.get("function") or {}
        output.append(
            {
                "id": ids.item("fc", position),
                "type": "function_call",
                "status": item_status,
                "call_id": call.get("id") or ids.item("call", position),
                **names.call_fields(function.get("name") or ""),
                "arguments": function.get("arguments") or "",
            }
        )
    response = response_shell(request, ids, model)
    response.update(
        status=status,
        completed_at=ids.completed_at if status == "completed" else None,
        incomplete_details=incomplete,
        output=output,
    )
    if (usage := response_usage(completion.get("usage"))) is not None:
        response["usage"] = usage
    return response


def summary(text: str) -> dict[str, str]:
    return {"type": "summary_text", "text": text}


def message_item(item_id: str, content: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "content": content, "role": "assistant"}


def output_text(response: dict[str, Any]) -> str:
    """The text of a Response's messages, as the SDKs' `output_text` joins it."""
    return "".join(
        part.get("text", "")
        for item in response.get("output") or ()
        if item.get("type") == "message"
        for part in item.get("content") or ()
        if part.get("type") == "output_text"
    )
