"""The OpenAPI schema's parts drf-spectacular cannot infer: our bearer keys and the one error shape."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

ERROR_COMPONENT = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string", "description": "What went wrong, fit to show a person."},
                "type": {
                    "type": "string",
                    "enum": [
                        "invalid_request_error",
                        "authentication_error",
                        "permission_error",
                        "not_found_error",
                        "rate_limit_error",
                    ],
                },
                "param": {"type": "string", "nullable": True, "description": "The field a validation error is about."},
                "code": {"type": "string", "nullable": True, "description": "The reason, for programs."},
            },
        }
    },
}

ERRORS = {
    "400": "Invalid input (the message names the field; `param` too).",
    "401": "No valid session or API key.",
    "403": "Not allowed (a session without its CSRF token, or an API key where a session is needed).",
    "404": "No such object among yours.",
    "429": "Too many requests; retry after the Retry-After header's seconds.",
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api_auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from your profile page: `Authorization: Bearer sk-...`.",
        }


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook: every operation may answer these errors, all in the one shape."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_COMPONENT
    ref = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERRORS.items():
                responses.setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": ref}}}
                )
    return result
