"""Untrusted input at the boundary: JSON with size and depth limits, text PostgreSQL can store,
integers and date ranges from query strings.

    data = parse_json(raw, max_bytes=..., max_depth=32)   # BadInput with a message fit for the caller
    check_text(content)                                     # BadInput for NUL or an unpaired surrogate
    days = query_int(request.GET, "days", default=30, minimum=1, maximum=366)   # BadInput out of bounds
    start, end = day_range("2026-01-01", "", today=..., default_days=30, max_days=366)

PostgreSQL refuses NUL in text (a DataError) and psycopg cannot encode a lone surrogate (JSON may
carry "\\ud800"); both are refused here with a readable reason instead of failing at the database.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

DEFAULT_MAX_DEPTH = 32
MAX_ID = 2**63 - 1  # the largest id a row can have (PostgreSQL's bigint)

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_INTEGER = re.compile(r"-?[0-9]+")


class BadInput(ValueError):
    """Input refused, with a message fit to show whoever sent it."""


def _no_constants(name: str) -> Any:
    raise BadInput(f"{name} is not valid JSON.")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: valid JSON, but no JSON encoder can write it back out
        raise BadInput(f"The number {text[:40]} is too large.")
    return value


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, walking without recursion; stops once past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json(raw: str | bytes, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parsed JSON, or BadInput when it is too large, too deep, not JSON or not UTF-8."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise BadInput(f"The message is too large (at most {max_bytes} bytes).")
    try:
        # The C parser gives up (RecursionError) long before deep input could harm the process.
        value = json.loads(raw, parse_constant=_no_constants, parse_float=_finite)
    except RecursionError:
        raise BadInput(f"The JSON is nested too deeply (at most {max_depth} levels).") from None
    except BadInput:
        raise
    except (ValueError, TypeError):
        raise BadInput("The message is not valid JSON.") from None
    # Nesting needs an opening bracket per level: a text with few cannot be too deep (most requests).
    opening = raw.count(b"{") + raw.count(b"[") if isinstance(raw, bytes) else raw.count("{") + raw.count("[")
    if opening > max_depth and _depth(value, max_depth) > max_depth:
        raise BadInput(f"The JSON is nested too deeply (at most {max_depth} levels).")
    return value


def unstorable(text: str) -> str | None:
    """Why `text` cannot be stored, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "it contains a NUL character"
    return "it contains an unpaired surrogate (invalid Unicode)"


def check_text(text: str, what: str = "The text") -> str:
    reason = unstorable(text)
    if reason is not None:
        raise BadInput(f"{what} cannot be stored: {reason}.")
    return text


def unstorable_in(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first string (key or value) of parsed JSON that cannot be stored, as (its path, why).

    Paths read as OpenAI names params: `messages[0].content`. Walks without recursion.
    """
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            reason = unstorable(item)
            if reason is not None:
                return where, reason
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{where}.{key}" if where else str(key)
                reason = unstorable(key)
                if reason is not None:
                    return child_path, reason
                stack.append((child, child_path))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(item))
    return None


def query_int(params: Mapping[str, str], name: str, *, default: int, minimum: int, maximum: int) -> int:
    """The integer `name` of a query string (`default` when it is absent), from `minimum` to `maximum`.

    BadInput for anything else, empty included. Only ASCII digits (and a minus sign): int() would take
    spaces, underscores and other scripts' digits, and it refuses strings over 4,300 digits with a
    ValueError; no string longer than the bounds' own reaches it.
    """
    raw = params.get(name)
    if raw is None:
        return default
    widest = max(len(str(minimum)), len(str(maximum)))
    if len(raw) > widest or not _INTEGER.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        raise BadInput(f"{name} must be a whole number from {minimum} to {maximum}.")
    return int(raw)


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(text: str, what: str = "The date") -> date:
    """A calendar day written YYYY-MM-DD, or BadInput saying what is wrong with it."""
    text = text.strip()
    if not _DAY.fullmatch(text):
        raise BadInput(f"{what} must be a date written YYYY-MM-DD, got {text[:40]!r}.")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{what} {text!r} is not a day of the calendar.") from None


def day_range(start: str, end: str, *, today: date, default_days: int, max_days: int) -> tuple[date, date]:
    """The days from `start` to `end` included; an empty end is today, an empty start `default_days` before it.

    BadInput when a date is malformed, the range runs backwards or spans more than `max_days` days.
    """
    last = parse_day(end, "The end date") if end.strip() else today
    first = parse_day(start, "The start date") if start.strip() else last - timedelta(days=default_days - 1)
    if first > last:
        raise BadInput(f"The start date ({first}) is after the end date ({last}).")
    if (last - first).days + 1 > max_days:
        raise BadInput(f"The range spans more than {max_days} days; choose a shorter one.")
    return first, last
