"""What a tool is (its spec for the model), what a call of it asks, and what comes back: one shape for every tool."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]")


def function_name(group: str, tool: str, taken: set[str]) -> str:
    """`group__tool` in the characters and length every API accepts for a function name, unique among `taken`
    (which it joins)."""
    base = _NOT_NAME.sub("_", f"{group}__{tool}")[:64]
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base[: 64 - len(str(n)) - 1]}_{n}"
    taken.add(name)
    return name


class ToolError(Exception):
    """A tool failed in a way the model should be told about (the message is shown to it and to the user)."""


@dataclass(frozen=True)
class ToolSpec:
    """A tool as a model sees it: a name unique in the request, a description, a JSON schema of its arguments.

    `kind` and `server` say who runs it: "web_search", "fetch", or "mcp" with the server's id.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    kind: str
    server_id: int | None = None
    server_name: str = ""
    remote_name: str = ""  # the tool's own name on its MCP server

    def as_function(self) -> dict[str, Any]:
        """The chat-completions `tools[]` entry."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass(frozen=True)
class ToolCall:
    """One call the model made: the tool's name as it was offered, its arguments, the model's call id."""

    name: str
    arguments: dict[str, Any]
    call_id: str = ""


@dataclass(frozen=True)
class Image:
    data: str  # base64
    mime_type: str


@dataclass(frozen=True)
class Source:
    """Where a result came from: a web page (web search's results, the page read), or a file of the user's
    knowledge bases (file_search: its `file_id`, the file's name as the title, no URL, the passage's 0..1
    `score`, the file's `attributes`, the `number` the model cites it by, its `page` and `section`)."""

    title: str
    url: str
    snippet: str = ""
    file_id: str = ""
    score: float | None = None
    attributes: Mapping[str, Any] | None = None
    number: int = 0
    page: int | None = None
    section: str = ""


@dataclass
class ToolResult:
    """A tool's answer: text for the model, images, structured data, the web sources; or an error."""

    text: str = ""
    images: list[Image] = field(default_factory=list)
    structured: Any = None
    sources: list[Source] = field(default_factory=list)
    is_error: bool = False
    truncated: bool = False

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls(text=message, is_error=True)

    @property
    def size(self) -> int:
        """Characters (text, structured data as JSON) and base64 bytes of images: what reaches the model."""
        structured = len(json.dumps(self.structured, default=str)) if self.structured is not None else 0
        return len(self.text) + structured + sum(len(image.data) for image in self.images)

    def capped(self, max_chars: int) -> ToolResult:
        """The result with its text cut to `max_chars` (said at the end), so no tool floods the model's context."""
        if len(self.text) <= max_chars:
            return self
        cut = self.text[:max_chars] + f"\n[cut: the result had {len(self.text)} characters, {max_chars} are shown]"
        return ToolResult(cut, self.images, self.structured, self.sources, self.is_error, truncated=True)
