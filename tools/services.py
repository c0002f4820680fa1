"""Who may use which MCP server, and the changes users and admins make to them (the one place for both rules)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_slug
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from tools.models import KeyTools, McpServer

_HEADER_NAME = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def servers_for(user: Any) -> QuerySet[McpServer]:
    """The enabled servers `user` may use: their own, and the global ones open to everyone, to them or their groups."""
    if not getattr(user, "is_authenticated", False):
        return McpServer.objects.none()
    global_allowed = Q(owner__isnull=True) & (
        Q(everyone=True) | Q(allowed_users=user) | Q(allowed_groups__in=user.groups.all())
    )
    return McpServer.objects.filter(Q(owner=user) | global_allowed, enabled=True).distinct()


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' as (name, value); ValidationError naming what is wrong (never echoing the value)."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not name or not set(name) <= _HEADER_NAME:
        raise ValidationError("a header is written 'Name: value', with a name of letters, digits and '-'")
    if not value or "\n" in value or "\r" in value:
        raise ValidationError(f"the header {name} needs a value on one line")
    return name, value


def validate_server(name: str, url: str) -> None:
    try:
        validate_slug(name)
    except ValidationError:
        raise ValidationError(f"invalid name {name!r}: use letters, digits, '-' and '_'") from None
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError("the URL must be an http or https URL") from None


def add_own_server(
    user: Any,
    name: str,
    url: str,
    headers: dict[str, str] | None = None,
    transport: str = McpServer.Transport.STREAMABLE_HTTP,
) -> McpServer:
    """A user's own server (never on internal addresses: the guard refuses them at every connection)."""
    validate_server(name, url)
    if transport not in McpServer.Transport.values:
        raise ValidationError(f"unknown transport {transport!r}")
    server = McpServer(owner=user, name=name, url=url, transport=transport)
    server.set_headers(headers or {})
    try:
        with transaction.atomic():
            server.save()
    except IntegrityError:
        raise ValidationError(f"you already have an MCP server named {name}") from None
    return server


def own_server(user: Any, server_id: int) -> McpServer:
    """The user's own server; McpServer.DoesNotExist for anyone else's and for global ones."""
    return McpServer.objects.get(pk=server_id, owner=user)


def update_own_server(
    user: Any, server_id: int, *, url: str | None = None, headers: dict[str, str] | None = None
) -> McpServer:
    """Change a user's own server. Global servers and other users' are not theirs to change (DoesNotExist)."""
    server = own_server(user, server_id)
    if url is not None:
        validate_server(server.name, url)
        server.url = url
    if headers is not None:
        server.set_headers(headers)
    server.save()
    return server


def remove_own_server(user: Any, server_id: int) -> None:
    own_server(user, server_id).delete()


def put_global_server(
    name: str, url: str, headers: dict[str, str] | None, allow_internal: bool
) -> tuple[McpServer, bool]:
    """Create or update the admin's global server `name`, open to everyone. Headers are replaced when given."""
    validate_server(name, url)
    server = McpServer.objects.filter(owner__isnull=True, name=name).first()
    created = server is None
    server = server or McpServer(name=name, everyone=True)
    server.url = url
    server.allow_internal = allow_internal
    if headers is not None:
        server.set_headers(headers)
    server.save()
    return server, created


async def narrowed_for_key(choice: Any, key_id: int | None) -> Any:
    """`choice` (a registry.ToolChoice) narrowed to what the API key may use (KeyTools); as it is without a row."""
    if key_id is None:
        return choice
    grant = await KeyTools.objects.filter(key_id=key_id).afirst()
    if grant is None:
        return choice
    servers = choice.mcp_servers
    if grant.mcp_servers is not None:
        allowed = tuple(str(name) for name in grant.mcp_servers)
        servers = allowed if servers is None else tuple(name for name in servers if name in allowed)
    return replace(
        choice,
        web_search=choice.web_search and grant.web_search,
        fetch=choice.fetch and grant.fetch,
        mcp_servers=servers,
    )


async def key_limits_servers(key_id: int | None) -> bool:
    """Whether the API key is narrowed to chosen MCP servers (so it may name no other by URL)."""
    if key_id is None:
        return False
    return await KeyTools.objects.filter(key_id=key_id, mcp_servers__isnull=False).aexists()


def request_server(
    user: Any, name: str, url: str, token: str | None, headers: dict[str, str] | None = None
) -> McpServer:
    """An MCP server a request names by URL (Anthropic's MCP connector, the Responses API's `mcp` tool): the
    user's own for this request, never saved, never on internal addresses, with only the token (or headers)
    the request carries."""
    validate_server(name, url)
    server = McpServer(owner=user, name=name, url=url, allow_internal=False)
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    server.set_headers(sent)
    return server
