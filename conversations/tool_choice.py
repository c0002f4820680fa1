"""Which tools a conversation's replies may use: the composer's "Tools" control, kept per conversation.

Stored on Conversation.tools (and Project.tools, what a project's new conversations start with) as
`{"web_search": bool, "fetch": bool, "mcp_servers": [name, ...]}`. A choice is checked against what the
user may use when it is set (another user's MCP server is refused, as if it did not exist), and again
when a reply runs: tools.registry only ever opens the servers tools.services.servers_for gives the user,
so a server removed or closed to them since is simply not offered.
"""

from __future__ import annotations

from typing import Any

from accounts.models import User
from conversations import errors
from tools import search, services, site
from tools.registry import ToolChoice

WEB_SEARCH = "web_search"
FETCH = "fetch"
MCP_SERVERS = "mcp_servers"
MAX_SERVERS = 50
LABELS = {WEB_SEARCH: "Web search", FETCH: "Read web pages"}


def _refused(message: str) -> errors.ChatError:
    return errors.ChatError(message, param="tools")


def clean(user: User, value: Any) -> dict[str, Any]:
    """The stored shape of `value`, or ChatError(param="tools") saying what is wrong with it."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _refused('The tools are an object: {"web_search": true, "fetch": false, "mcp_servers": ["name"]}.')
    unknown = sorted(set(value) - {WEB_SEARCH, FETCH, MCP_SERVERS})
    if unknown:
        raise _refused(f"Unknown tool {str(unknown[0])[:40]!r}; expected web_search, fetch or mcp_servers.")
    chosen: dict[str, Any] = {}
    for key in (WEB_SEARCH, FETCH):
        flag = value.get(key, False)
        if not isinstance(flag, bool):
            raise _refused(f"tools.{key} must be true or false.")
        if flag:
            chosen[key] = True
    names = value.get(MCP_SERVERS, [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise _refused("tools.mcp_servers must be a list of MCP server names.")
    if len(names) > MAX_SERVERS:
        raise _refused(f"At most {MAX_SERVERS} MCP servers can be chosen.")
    wanted = sorted(set(names))
    if wanted:
        usable = set(services.servers_for(user).filter(name__in=wanted).values_list("name", flat=True))
        missing = [name for name in wanted if name not in usable]
        if missing:
            raise _refused(f"There is no MCP server named {missing[0][:64]!r} that you may use.")
        chosen[MCP_SERVERS] = wanted
    return chosen


def still_usable(user: User, stored: dict[str, Any] | None) -> dict[str, Any]:
    """A stored choice (a project's default) without the MCP servers the user may no longer use."""
    stored = dict(stored or {})
    names = stored.get(MCP_SERVERS) or []
    if names:
        usable = set(services.servers_for(user).filter(name__in=names).values_list("name", flat=True))
        stored[MCP_SERVERS] = [name for name in names if name in usable]
        if not stored[MCP_SERVERS]:
            del stored[MCP_SERVERS]
    return stored


def choice_of(stored: dict[str, Any] | None) -> ToolChoice | None:
    """What a reply turns on (tools.registry's request), or None when the conversation uses no tool."""
    stored = stored or {}
    choice = ToolChoice(
        web_search=bool(stored.get(WEB_SEARCH)),
        fetch=bool(stored.get(FETCH)),
        mcp_servers=tuple(stored.get(MCP_SERVERS) or ()),
    )
    if not (choice.web_search or choice.fetch or choice.mcp_servers):
        return None
    return choice


def options(user: User) -> list[dict[str, Any]]:
    """The composer's "Tools" control: the built-in tools and each MCP server the user may use.

    `key` is what the page sends back: "web_search", "fetch" or "mcp:<name>".
    """
    site.refresh_sync()
    searching = search.configured_engine() is not None
    shown = [
        {
            "key": WEB_SEARCH,
            "label": LABELS[WEB_SEARCH],
            "available": searching,
            "note": "" if searching else "No search engine is set up on this server.",
        },
        {"key": FETCH, "label": LABELS[FETCH], "available": True, "note": ""},
    ]
    seen: set[str] = set()
    for server in services.servers_for(user).order_by("name", "pk"):
        if server.name in seen:  # one's own server and a shared one of the same name: one choice, both offered
            continue
        seen.add(server.name)
        note = "yours" if server.owner_id == user.pk else "shared"
        shown.append({"key": f"mcp:{server.name}", "label": server.name, "available": True, "note": note})
    return shown
