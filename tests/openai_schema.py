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
