"""The names a chat upstream knows a Responses request's functions by: `namespace` tools flattened.

Chat completions have no namespaces, so a function `spawn_agent` of the namespace `agents` is offered
as `agents__spawn_agent` (tools.results.function_name: the characters and length every API accepts,
unique in the request); the model's call of that name comes back as a `function_call` item with
`namespace: "agents"` and `name: "spawn_agent"`, as OpenAI's answers carry it. Top-level functions
keep their names, and take precedence over a flattened name that would equal one of them. The
mapping is computed from the request alone, so the request's and the answer's translations agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.responses_api.protocol import CreateResponse, FunctionTool, NamespaceTool
from tools.results import function_name


@dataclass
class ToolNames:
    """(namespace, name) <-> the upstream's function name, for one request."""

    upstream: dict[tuple[str, str], str] = field(default_factory=dict)
    restored: dict[str, tuple[str, str]] = field(default_factory=dict)

    def name_for(self, namespace: str | None, name: str) -> str:
        """The upstream's name of a function (one of an earlier turn no longer offered gets the same rule)."""
        if not namespace:
            return name
        return self.upstream.get((namespace, name)) or function_name(namespace, name, set())

    def call_fields(self, upstream_name: str) -> dict[str, Any]:
        """A function_call item's `namespace` (when it has one) and `name` for the upstream's call."""
        if upstream_name in self.restored:
            namespace, name = self.restored[upstream_name]
            return {"namespace": namespace, "name": name}
        return {"name": upstream_name}


def tool_names(request: CreateResponse) -> ToolNames:
    names = ToolNames()
    tools = request.tools or ()
    taken = {tool.name for tool in tools if isinstance(tool, FunctionTool)}
    for tool in tools:
        if not isinstance(tool, NamespaceTool):
            continue
        for inner in tool.tools:
            if isinstance(inner, FunctionTool):
                flat = function_name(tool.name, inner.name, taken)
                names.upstream[(tool.name, inner.name)] = flat
                names.restored[flat] = (tool.name, inner.name)
    return names
