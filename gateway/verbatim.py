"""An upstream's JSON object relayed as the very text it came as (gateway.wire writes `text`).

    answer = Verbatim.of(text)                   # ValueError when `text` is no JSON object
    answer.replace("modelVersion", "acme/chat")  # only that value's text changes, if the field is there
    answer["candidates"]                         # read like any dict

A passthrough (Gemini in front and behind) hands the client the upstream's bytes: fields we do not
model, their order and whitespace, big numbers, all survive, since nothing is re-encoded. The dict is
what was parsed, for reading the usage and the end; `replace` is the one way to change it, so the
dict and the text never disagree. A copy (`dict(answer)`, the response cache's) is plain JSON again.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _skip(text: str, at: int) -> int:
    match = _SPACE.match(text, at)
    return match.end() if match is not None else at


def _closes_the_object(text: str, at: int) -> bool:
    """Whether `text` from `at` (just past a value) is the rest of a top-level object: `, "k": v` pairs
    and the last `}`. Nested, the value would be followed by more than that."""
    at = _skip(text, at)
    while text[at : at + 1] == ",":
        at = _skip(text, at + 1)
        if text[at : at + 1] != '"':
            return False
        _key, at = json.decoder.scanstring(text, at + 1)  # type: ignore[attr-defined]
        at = _skip(text, at)
        if text[at : at + 1] != ":":
            return False
        _value, at = _DECODER.raw_decode(text, _skip(text, at + 1))
        at = _skip(text, at)
    return text[at : at + 1] == "}" and not text[at + 1 :].strip(" \t\n\r")


def _last_span(text: str, name: str) -> tuple[int, int] | None:
    """The quick way to a field near the end, where Google puts modelVersion: its last occurrence, if
    it is a key and only the object's own last fields follow it; None when that cannot tell."""
    quoted = json.dumps(name)
    at = text.rfind(quoted)
    if at < 0 or text[:at].rstrip(" \t\n\r")[-1:] not in ("{", ","):  # else inside a string, say
        return None
    colon = _skip(text, at + len(quoted))
    if text[colon : colon + 1] != ":":
        return None
    start = _skip(text, colon + 1)
    try:
        _value, end = _DECODER.raw_decode(text, start)
        return (start, end) if _closes_the_object(text, end) else None
    except ValueError:
        return None


def value_span(text: str, name: str) -> tuple[int, int] | None:
    """Where the value of the top-level field `name` of the JSON object `text` starts and ends (the
    last one, as json.loads reads duplicates); None when it has no such field."""
    quick = _last_span(text, name)
    if quick is not None:
        return quick
    at = _skip(text, 0)
    if text[at : at + 1] != "{":
        return None
    at = _skip(text, at + 1)
    found = None
    while text[at : at + 1] == '"':
        key, at = json.decoder.scanstring(text, at + 1)  # type: ignore[attr-defined]
        at = _skip(text, _skip(text, at) + 1)  # past the ':'
        _value, end = _DECODER.raw_decode(text, at)
        if key == name:
            found = (at, end)
        at = _skip(text, end)
        if text[at : at + 1] != ",":
            break
        at = _skip(text, at + 1)
    return found


class Verbatim(dict[str, Any]):
    """A JSON object as parsed, and `text`, what goes on the wire (see the module's docstring)."""

    text: str

    @classmethod
    def of(cls, text: str) -> Verbatim:
        payload = json.loads(text)
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object")
        verbatim = cls(payload)
        verbatim.text = text
        return verbatim

    def replace(self, name: str, value: Any) -> None:
        """The top-level field `name`, if present, set to `value`, in the dict and in the text."""
        if name not in self:
            return
        span = value_span(self.text, name)
        if span is None:  # json.loads read what the scan cannot: re-encoded, never left stale
            self.text = json.dumps({**self, name: value}, separators=(",", ":"), ensure_ascii=False)
        else:
            start, end = span
            self.text = self.text[:start] + json.dumps(value, ensure_ascii=False) + self.text[end:]
        self[name] = value
