"""What the translations both ways share: finish reasons, token usage, errors, small helpers."""

from __future__ import annotations

import json
from typing import Any

from gateway.errors import GatewayError

# Gemini's finish reasons as OpenAI's (a function call ends with STOP there: the parts tell).
FINISH_TO_OPENAI = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "stop",
    "OTHER": "stop",
    "MALFORMED_FUNCTION_CALL": "stop",
    "UNEXPECTED_TOOL_CALL": "stop",
    "TOO_MANY_TOOL_CALLS": "stop",
}
FINISH_TO_GEMINI = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "content_filter": "SAFETY",
}

# Where Gemini's thinking budgets and OpenAI's efforts meet (Gemini 2.5's budgets run 0 to 24576).
EFFORT_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576, "max": -1}
LEVEL_EFFORTS = {"MINIMAL": "minimal", "LOW": "low", "MEDIUM": "medium", "HIGH": "high"}


def bad(message: str, param: str) -> GatewayError:
    return GatewayError(400, message, param=param, code="invalid_value")


def count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def mapping(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one: upstream answers are read, not trusted."""
    return value if isinstance(value, dict) else {}


def listing(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def arguments_object(text: str) -> dict[str, Any]:
    """A tool call's JSON arguments as Gemini's `args` object (what is not an object goes as `{}`)."""
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def usage_to_openai(metadata: Any) -> dict[str, Any] | None:
    """Gemini's usageMetadata as OpenAI's usage: thoughts count as completion (reasoning) tokens."""
    metadata = mapping(metadata)
    if not metadata:
        return None
    prompt = count(metadata.get("promptTokenCount")) + count(metadata.get("toolUsePromptTokenCount"))
    thoughts = count(metadata.get("thoughtsTokenCount"))
    completion = count(metadata.get("candidatesTokenCount")) + thoughts
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    cached = count(metadata.get("cachedContentTokenCount"))
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if thoughts:
        usage["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return usage


def usage_to_gemini(usage: Any) -> dict[str, Any]:
    """OpenAI's usage as Gemini's usageMetadata: reasoning tokens are thoughts, the rest candidates."""
    usage = mapping(usage)
    prompt = count(usage.get("prompt_tokens"))
    completion = count(usage.get("completion_tokens"))
    thoughts = count(mapping(usage.get("completion_tokens_details")).get("reasoning_tokens"))
    metadata: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": max(0, completion - thoughts)}
    cached = count(mapping(usage.get("prompt_tokens_details")).get("cached_tokens"))
    if cached:
        metadata["cachedContentTokenCount"] = cached
    if thoughts:
        metadata["thoughtsTokenCount"] = thoughts
    metadata["totalTokenCount"] = prompt + completion
    return metadata


# Google's canonical error statuses (google.rpc.Code) by HTTP status.
GOOGLE_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def google_error(error: GatewayError) -> tuple[int, dict[str, Any]]:
    """Our error as Google's answer: (status, {"error": {"code", "message", "status"}})."""
    status = error.status
    name = GOOGLE_STATUSES.get(status) or ("INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
    return status, {"error": {"code": status, "message": error.message, "status": name}}
