"""Strict request validation's shared parts: OpenAI's words for a value of the wrong JSON type, and
the one reading of `stream` every endpoint decides on.

The protocol models validate request bodies in pydantic's strict mode (`"16"` is no integer, `1`
and `"true"` are no boolean; an integer is a number, as in JSON).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from gateway.errors import GatewayError

# What a strict type error expects, and what JSON value came instead, in OpenAI's words.
_EXPECTED = {
    "bool_type": "a boolean",
    "int_type": "an integer",
    "float_type": "a decimal",
    "string_type": "a string",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}
_JSON_TYPES = ((bool, "a boolean"), (int, "an integer"), (float, "a decimal"), (str, "a string"), (list, "an array"))


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), "an object")


def invalid_type(
    exc: ValidationError, first: Any, param: str | None, param_of: Callable[[Any], str | None]
) -> GatewayError | None:
    """OpenAI's 400 `invalid_type` when `first` (an error of `exc`) is a value of the wrong JSON type,
    naming every type a union at that param takes; None for any other error."""
    if first["type"] not in _EXPECTED:
        return None
    same = [error for error in exc.errors(include_url=False) if param_of(error["loc"]) == param]
    expected = list(dict.fromkeys(_EXPECTED[error["type"]] for error in same if error["type"] in _EXPECTED))
    got = json_type(first["input"])
    if got in expected:  # the right type for another member of a union, which failed for another reason
        return None
    return GatewayError(
        400,
        f"Invalid type for '{param}': expected {' or '.join(expected)}, but got {got} instead.",
        param=param,
        code="invalid_type",
    )


@functools.cache
def _stream_field(model: type[BaseModel]) -> TypeAdapter[Any]:
    annotation: Any = model.model_fields["stream"].annotation
    return TypeAdapter(annotation)


def streams(model: type[BaseModel], body: dict[str, Any]) -> bool:
    """Whether a request asks for a stream, as `model`'s own `stream` field validates it: true only for a
    valid true. An invalid `stream` takes the answer's way, where validating the body refuses it."""
    try:
        return _stream_field(model).validate_python(body.get("stream"), strict=True) is True
    except ValidationError:
        return False
