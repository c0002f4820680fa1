"""Which pages may open our WebSockets: our own origin, or one listed in CSRF_TRUSTED_ORIGINS.

Browsers send a page's cookies with a WebSocket handshake to any site, and a socket is not
subject to CORS: the Origin header is the only thing telling our page from another site's.
Comparing host names alone (channels' AllowedHostsOriginValidator) lets any other service on the
same host name in: another port (a dev server on localhost:3000) or another scheme. So the whole
origin must match: scheme, host and port, with the site's own origin taken from the request as
Django takes it for CSRF (its Host, validated against ALLOWED_HOSTS, and https when the socket
is wss or, with HTTPS=1, the proxy's X-Forwarded-Proto says so). A missing, "null" or malformed
Origin is refused: every browser sends one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

Origin = tuple[str, str, int]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _parse(origin: str) -> Origin | None:
    """(scheme, host, port) with the scheme's default port filled in; None for anything odd."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") or parts.query:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _secure(scope: dict[str, Any]) -> bool:
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        header, secure_value = proxy
        name = header.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
        value = _header(scope, name)
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") in ("wss", "https")


def own_origin(scope: dict[str, Any]) -> Origin | None:
    """The site's origin as this request reaches it; None when its Host is not one of ALLOWED_HOSTS."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    if not domain or not validate_host(domain, allowed):
        return None
    return _parse(f"{'https' if _secure(scope) else 'http'}://{host}")


def _trusted(origin: Origin) -> bool:
    scheme, host, port = origin
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        if "*" in entry:
            # Django's form: "https://*.example.com" trusts the subdomains of example.com.
            pattern = _parse(entry.replace("*", "wildcard", 1))
            if pattern is None:
                continue
            wildcard_host = pattern[1].replace("wildcard", "", 1)
            if (pattern[0], pattern[2]) == (scheme, port) and is_same_domain(host, wildcard_host):
                return True
        elif _parse(entry) == origin:
            return True
    return False


def origin_allowed(scope: dict[str, Any]) -> bool:
    raw = _header(scope, b"origin")
    origin = _parse(raw) if raw else None
    if origin is None:
        return False
    return origin == own_origin(scope) or _trusted(origin)


class SameOriginValidator:
    """ASGI middleware: refuses the handshake of a WebSocket whose Origin is not ours."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
