"""Validate our /v1 answers against OpenAI's published schema (tests/data/openai-openapi.yaml).

The file mixes OpenAPI 3.0's `nullable: true` into 3.1 schemas; it is read as "null allowed"
by rewriting such a node to `anyOf: [node, {type: null}]` before validating.

    validate(body, "CreateChatCompletionResponse")   # raises jsonschema.ValidationError
"""

from __future__ import annotations

import os
import pickle
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
SPEC = Path(os.environ.get("OPENAI_SPEC", ROOT / "tests" / "data" / "openai-openapi.yaml"))
_CACHE_DIR = ROOT / "var" / "cache"


def _rewrite_nullable(node: Any) -> Any:
    if isinstance(node, list):
        return [_rewrite_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    rewritten = {key: _rewrite_nullable(value) for key, value in node.items()}
    if rewritten.pop("nullable", False) is True:
        return {"anyOf": [rewritten, {"type": "null"}]}
    return rewritten


@cache
def _components() -> dict[str, Any]:
    if not SPEC.exists():
        raise FileNotFoundError(f"OpenAI's schema is missing at {SPEC} (set OPENAI_SPEC)")
    # Parsing 3 MB of YAML takes seconds; keep the parsed schemas keyed by the file's size and mtime.
    stat = SPEC.stat()
    cached = _CACHE_DIR / f"openai-spec-{stat.st_size}-{int(stat.st_mtime)}.pickle"
    if cached.exists():
        with cached.open("rb") as handle:
            components: dict[str, Any] = pickle.load(handle)  # noqa: S301 - our own cache file
            return components
    with SPEC.open() as handle:
        document = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    components = {"components": {"schemas": _rewrite_nullable(document["components"]["schemas"])}}
    _CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with cached.open("wb") as handle:
        pickle.dump(components, handle)
    return components


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = {**_components(), "$ref": f"#/components/schemas/{name}"}
    return jsonschema.Draft202012Validator(schema)


def validate(instance: Any, name: str) -> None:
    """Raise jsonschema.ValidationError (the most relevant one) when `instance` breaks schema `name`."""
    validator = _validator(name)
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        raise error


@cache
def _event_schemas() -> dict[str, str]:
    """Each Responses stream event's type -> its schema's name (ResponseStreamEvent is an anyOf of them)."""
    schemas = _components()["components"]["schemas"]
    names: dict[str, str] = {}
    for member in schemas["ResponseStreamEvent"]["anyOf"]:
        name = member["$ref"].rsplit("/", 1)[-1]
        for kind in schemas[name].get("properties", {}).get("type", {}).get("enum", []):
            names[kind] = name
    return names


def validate_event(event: Any) -> None:
    """Validate a Responses stream event against the schema its `type` names (errors say more than the anyOf's)."""
    name = _event_schemas().get(event.get("type")) if isinstance(event, dict) else None
    if name is None:
        raise jsonschema.ValidationError(f"no Responses stream event has the type {event.get('type')!r}")
    validate(event, name)
    validate(event, "ResponseStreamEvent")


def validate_completion_chunk(chunk: Any) -> None:
    """A streamed text completion chunk against CreateCompletionResponse, which the spec uses for both.

    The schema describes whole answers: its `finish_reason` is never null, while every chunk but the
    last has `finish_reason: null` (as OpenAI's own streams do); only that is let through.
    """
    choices = [
        {**choice, "finish_reason": choice.get("finish_reason") or "stop"} for choice in chunk.get("choices") or []
    ]
    validate({**chunk, "choices": choices}, "CreateCompletionResponse")
