"""One error shape for every error the REST API answers, OpenAI's (as /v1's):

    {"error": {"message": "...", "type": "...", "param": "title" | null, "code": "..."}}

`type` follows the status: 400 invalid_request_error, 401 authentication_error, 403 permission_error,
404 not_found_error, 405 invalid_request_error, 429 rate_limit_error. `code` is the machine-readable
reason (e.g. "required", "max_length", "not_authenticated", "invalid_api_key", "not_found",
"method_not_allowed", "throttled"); `param` names the field a validation error is about.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    kind = TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _flatten(detail: Any, path: str = "") -> list[tuple[str, str, str]]:
    """(field path, message, code) for each message of a ValidationError's detail."""
    if isinstance(detail, dict):
        found = []
        for key, value in detail.items():
            found.extend(_flatten(value, f"{path}.{key}" if path else str(key)))
        return found
    if isinstance(detail, list):
        return [item for value in detail for item in _flatten(value, path)]
    return [(path, str(detail), getattr(detail, "code", "invalid"))]


def _validation(exc: exceptions.ValidationError) -> tuple[str, str, str | None]:
    problems = _flatten(exc.detail) or [("", "Invalid input.", "invalid")]
    field, _, code = problems[0]
    param = None if field in ("", "non_field_errors") else field
    message = "; ".join(
        text if where in ("", "non_field_errors") else f"{where}: {text}" for where, text, _ in problems
    )
    return message, code, param


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()  # never "No Conversation matches the given query."
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        message, code, param = _validation(exc)
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        message, param = str(exc.detail), None
    response.data = error_body(response.status_code, message, code, param)
    return response


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any path under /api/ that names no endpoint."""
    return JsonResponse(error_body(404, f"There is no endpoint at {request.path}.", "not_found"), status=404)
