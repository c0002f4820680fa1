"""OpenAI's attribute filters (comparison and compound) as a Django Q over a store file's `attributes`.

    {"type": "eq", "key": "lang", "value": "en"}
    {"type": "and", "filters": [{"type": "gte", "key": "year", "value": 2020}, {"type": "in", ...}]}

Ordering comparisons hold only between values of the same JSON type (a number is never "less" than a
string), as OpenAI's do. Anything malformed raises FilterError with a message naming what is wrong.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Func, JSONField, Q, TextField, Value
from django.db.models.fields.json import KeyTransform
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual

COMPARISONS = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"}
COMPOUNDS = {"and", "or"}
MAX_KEY_CHARS = 64
MAX_NODES = 50
MAX_DEPTH = 5
MAX_LIST = 100
Scalar = str | int | float | bool
ORDERINGS = {"gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual}


class FilterError(ValueError):
    """A filter that is not OpenAI's shape or is too large."""


def to_q(spec: Any, field: str = "attributes") -> Q:
    counter = [0]
    return _node(spec, field, 0, counter)


def _node(spec: Any, field: str, depth: int, counter: list[int]) -> Q:
    counter[0] += 1
    if counter[0] > MAX_NODES or depth > MAX_DEPTH:
        raise FilterError(f"filters may hold at most {MAX_NODES} filters, nested at most {MAX_DEPTH} deep")
    if not isinstance(spec, dict):
        raise FilterError("a filter must be an object")
    kind = spec.get("type")
    if kind in COMPOUNDS:
        parts = spec.get("filters")
        if not isinstance(parts, list) or not parts:
            raise FilterError(f"an '{kind}' filter needs a non-empty 'filters' list")
        children = [_node(part, field, depth + 1, counter) for part in parts]
        combined = children[0]
        for child in children[1:]:
            combined = (combined & child) if kind == "and" else (combined | child)
        return combined
    if kind in COMPARISONS:
        return _comparison(kind, spec.get("key"), spec.get("value"), field)
    raise FilterError(f"unknown filter type {kind!r}: one of {', '.join(sorted(COMPARISONS | COMPOUNDS))}")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _json_type(value: Scalar) -> str:
    return "boolean" if isinstance(value, bool) else "string" if isinstance(value, str) else "number"


def _equals(target: KeyTransform, value: Scalar) -> Q:
    return Q(Exact(target, Value(value, output_field=JSONField())))


def _comparison(kind: str, key: Any, value: Any, field: str) -> Q:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
        raise FilterError(f"a comparison needs a 'key' of 1 to {MAX_KEY_CHARS} characters")
    # A KeyTransform takes the key as one name, whatever characters it holds ("a__b" is not a path).
    target = KeyTransform(key, field)
    if kind in ("in", "nin"):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST or not all(map(_is_scalar, value)):
            raise FilterError(f"'{kind}' needs a 'value' list of 1 to {MAX_LIST} strings, numbers or booleans")
        found = Q()
        for item in value:
            found |= _equals(target, item)
        return found if kind == "in" else ~found
    if not _is_scalar(value):
        raise FilterError(f"'{kind}' needs a 'value' that is a string, number or boolean")
    if kind in ("eq", "ne"):
        return _equals(target, value) if kind == "eq" else ~_equals(target, value)
    same_type = Exact(Func(target, function="jsonb_typeof", output_field=TextField()), _json_type(value))
    return Q(same_type) & Q(ORDERINGS[kind](target, Value(value, output_field=JSONField())))
