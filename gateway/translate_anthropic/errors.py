"""Errors: ours (OpenAI's shape) as Anthropic's, and Anthropic's as ours."""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError

# Anthropic's error types by HTTP status (https://docs.anthropic.com/en/api/errors).
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
OVERLOADED = 529


def anthropic_error(error: GatewayError) -> tuple[int, dict[str, Any]]:
    """Our error as Anthropic's answer: (status, {"type": "error", "error": {"type", "message"}}).

    Statuses stay ours but for a 503 (no upstream can take the request now), which Anthropic's
    clients know as 529 overloaded_error and retry.
    """
    status = OVERLOADED if error.status == 503 else error.status
    kind = ANTHROPIC_ERROR_TYPES.get(status)
    if kind is None:
        kind = "api_error" if status >= 500 else "invalid_request_error"
    return status, {"type": "error", "error": {"type": kind, "message": error.message}}


# Anthropic's error types as OpenAI's (type, code), for an OpenAI client of an Anthropic upstream.
_OPENAI_ERRORS = {
    "invalid_request_error": ("invalid_request_error", None),
    "authentication_error": ("authentication_error", "upstream_authentication"),
    "permission_error": ("permission_error", "upstream_permission"),
    "not_found_error": ("invalid_request_error", "not_found"),
    "request_too_large": ("invalid_request_error", "too_large"),
    "rate_limit_error": ("rate_limit_exceeded", "rate_limit_exceeded"),
    "billing_error": ("upstream_error", "upstream_billing"),
    "timeout_error": ("upstream_error", "upstream_timeout"),
    "overloaded_error": ("upstream_error", "upstream_overloaded"),
    "api_error": ("upstream_error", "upstream_error"),
}


def openai_error(anthropic_type: str | None) -> tuple[int, str, str | None]:
    """An Anthropic error type as (the status we answer, OpenAI's type, code); unknown types are upstream errors.

    An overloaded upstream is a 503 (retryable: another deployment may take the request).
    """
    type_, code = _OPENAI_ERRORS.get(anthropic_type or "", ("upstream_error", "upstream_error"))
    statuses = {"overloaded_error": 503, "timeout_error": 504, "api_error": 502, "billing_error": 502}
    status = statuses.get(anthropic_type or "", 502 if type_ == "upstream_error" else 400)
    if type_ == "rate_limit_exceeded":
        status = 429
    return status, type_, code


def describe_anthropic_error(payload: Any) -> tuple[str | None, str]:
    """(type, message) of an Anthropic error answer or event; (None, "") when it is none."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return None, ""
    kind = error.get("type")
    message = error.get("message")
    return (kind if isinstance(kind, str) else None), (message if isinstance(message, str) else "")
