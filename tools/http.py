"""HTTP clients for the tools, every connection through the SSRF guard (core.netguard); the tools' one httpx2 importer.

Why not gateway.upstream, the project's httpx importer: the tools sit below the gateway in the app graph,
and the MCP SDK takes only httpx2 clients (httpx's fork), so page reading, web search and MCP share this
module's httpx2 clients. Each client connects to the address the guard checked (pinned, no second DNS
lookup), reads no proxy or certificate settings from the environment, and follows no redirect by itself:
`get` follows them here, a bounded number, each new URL checked again.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urljoin

import httpcore2
import httpx2

from core.clock import clock
from core.netguard import Guard, GuardedBackend, Refused
from tools.results import ToolError

MAX_REDIRECTS = 5
SCHEMES = ("http", "https")
USER_AGENT = "chatsite-tools/1"

HTTPError = httpx2.HTTPError
Timeout = httpx2.Timeout


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """The system's CA certificates, loaded once: loading them costs tens of milliseconds of CPU, and every
    tool call opens a client (an MCP call two)."""
    return httpx2.create_ssl_context(trust_env=False)


def client(
    guard: Guard,
    *,
    headers: dict[str, str] | None = None,
    timeout: httpx2.Timeout | float | None = 30.0,
    auth: httpx2.Auth | None = None,
) -> httpx2.AsyncClient:
    """An httpx2 client whose every connection the guard checked and pinned."""
    context = ssl_context()
    transport = httpx2.AsyncHTTPTransport(verify=context, trust_env=False)
    transport._pool = httpcore2.AsyncConnectionPool(
        ssl_context=context,
        network_backend=GuardedBackend(httpcore2.AnyIOBackend(), guard),  # type: ignore[arg-type]
    )
    return httpx2.AsyncClient(
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        timeout=timeout,
        auth=auth,
        follow_redirects=False,
        trust_env=False,
        transport=transport,
    )


def check_url(url: str) -> httpx2.URL:
    """The URL parsed, refused unless it is http(s) with a host."""
    try:
        parsed = httpx2.URL(url)
    except (httpx2.InvalidURL, TypeError) as exc:
        raise Refused(f"not a URL: {exc}") from None
    if parsed.scheme not in SCHEMES or not parsed.host:
        raise Refused("only http and https URLs with a host can be fetched")
    if parsed.username or parsed.password:
        raise Refused("URLs carrying a user name or password are not fetched")
    return parsed


@asynccontextmanager
async def get(
    http: httpx2.AsyncClient, url: str, *, headers: dict[str, str] | None = None, max_redirects: int = MAX_REDIRECTS
) -> AsyncIterator[httpx2.Response]:
    """A streamed GET of `url`, following up to `max_redirects` redirects, each target checked again."""
    target = check_url(url)
    for _ in range(max_redirects + 1):
        request = http.build_request("GET", target, headers=headers)
        response = await http.send(request, stream=True)
        location = response.headers.get("location")
        if not (response.is_redirect and location):
            try:
                yield response
            finally:
                await response.aclose()
            return
        await response.aclose()
        target = check_url(urljoin(str(target), location))
    raise Refused(f"more than {max_redirects} redirects")


@asynccontextmanager
async def within(seconds: float, what: str) -> AsyncIterator[None]:
    """The body given `seconds` (of core.clock); running out of time, a refused address or an HTTP failure
    become a ToolError naming `what` (a host, never a URL's query or a credential)."""
    try:
        async with clock().timeout(seconds):
            yield
    except TimeoutError:
        raise ToolError(f"{what} did not answer within {seconds:g} seconds") from None
    except Refused as exc:
        raise ToolError(f"{what} is refused: {exc}") from None
    except httpx2.HTTPError as exc:
        raise ToolError(f"{what} could not be reached ({exc.__class__.__name__})") from None
