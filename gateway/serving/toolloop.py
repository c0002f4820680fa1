"""The tool loop (tools.loop) in the serving core: what every protocol running it shares.

    toolbox = await open_toolbox(call.caller, choice)               # GatewayError 400 naming `param`
    async for event in relay.with_keepalives(run_loop(...), keepalive):   # None while silent for `keepalive` s
        ...

Each model call of the loop is a request of its own through the serving core (the protocol's step
serving): the caller's limits and budgets are checked before each (a 429 stops the loop), and each
has its ledger row. The toolbox is the caller's: the tools its user may use, narrowed to its key's
(tools.models.KeyTools). A request naming no server tool never comes here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.auth import Caller
from gateway.errors import GatewayError
from tools import services
from tools.models import McpServer
from tools.registry import Toolbox, ToolChoice


async def open_toolbox(
    caller: Caller,
    choice: ToolChoice,
    param: str = "mcp_servers",
    extra_servers: Sequence[McpServer] = (),
    params: Mapping[str, str] | None = None,
) -> Toolbox:
    """The caller's toolbox for `choice`; a 400 naming `param` (or `params[server name]`) for an MCP server it
    may not use (or that does not exist: the two are not told apart), and for a server named by URL
    (`extra_servers`) that a narrowed key may not use or that does not answer."""
    named = params or {}
    key_id = caller.api_key.pk if caller.api_key is not None else None
    narrowed: ToolChoice = await services.narrowed_for_key(choice, key_id)
    if extra_servers and await services.key_limits_servers(key_id):
        raise GatewayError(
            400, "This key may use only the MCP servers it was given.", param=param, code="invalid_value"
        )
    toolbox = await Toolbox.open(caller.user, narrowed, api_key_id=key_id, extra_servers=extra_servers)
    offered = {spec.server_name for spec in toolbox.specs} | set(toolbox.unavailable)
    unknown = [name for name in choice.mcp_servers or () if name not in offered]
    if unknown:
        raise GatewayError(
            400,
            f"Unknown MCP server '{unknown[0]}': name one of the MCP servers this key may use.",
            param=named.get(unknown[0], param),
            code="invalid_value",
        )
    for server in extra_servers:
        if server.name in toolbox.unavailable:
            message = f"The MCP server '{server.name}' is unavailable: {toolbox.unavailable[server.name]}"
            raise GatewayError(400, message, param=named.get(server.name, param), code="invalid_value")
    return toolbox
