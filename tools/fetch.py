"""Page reading: a URL's readable text, through the SSRF guard, within a size cap, a time cap and a type allow-list.

HTML becomes its main text with trafilatura (menus, footers and scripts left out); plain text, Markdown,
CSV and JSON come back as they are. Anything else is refused by its Content-Type. A body above the
size cap is cut there (the reader stops; the result says so); a page not read within the time cap is a
tool error. Text extraction runs in a thread: a big page must not hold the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from django.conf import settings

from core.netguard import Guard, Refused
from tools import http
from tools.results import Source, ToolError, ToolResult

HTML_TYPES = {"text/html", "application/xhtml+xml"}
TEXT_TYPES = {"text/plain", "text/markdown", "text/csv", "application/json", "text/x-markdown"}


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    timeout: float

    @classmethod
    def configured(cls) -> Limits:
        return cls(settings.TOOLS_FETCH_MAX_BYTES, settings.TOOLS_FETCH_TIMEOUT)


def default_guard() -> Guard:
    return Guard(allowed=tuple(settings.TOOLS_INTERNAL_NETWORKS))


async def _read(url: str, guard: Guard, limits: Limits) -> tuple[str, str, bytes, str, bool]:
    """(final URL, media type, body up to the cap, charset, whether it was cut)."""
    async with http.client(guard, timeout=None) as client, http.get(client, url) as response:
        if response.status_code >= 400:
            raise ToolError(f"the page answered HTTP {response.status_code}")
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in HTML_TYPES | TEXT_TYPES:
            raise ToolError(f"pages of type {media_type or 'unknown'} are not read")
        body = bytearray()
        cut = False
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > limits.max_bytes:
                del body[limits.max_bytes :]
                cut = True
                break
        return str(response.url), media_type, bytes(body), response.charset_encoding or "utf-8", cut


def _readable(url: str, media_type: str, body: bytes, charset: str) -> ToolResult:
    if media_type in HTML_TYPES:
        import trafilatura  # about 15 MiB with lxml: loaded when a page is first read

        document = trafilatura.bare_extraction(body, url=url, with_metadata=True)
        text = getattr(document, "text", None) or ""
        title = getattr(document, "title", None) or url
    else:
        text = body.decode(charset, errors="replace")
        title = url
    return ToolResult(text=text or "(the page has no readable text)", sources=[Source(title, url)])


async def read_page(url: str, *, guard: Guard | None = None, limits: Limits | None = None) -> ToolResult:
    """The page's readable text as a tool result; every failure (refused, slow, too odd) a ToolError."""
    limits = limits or Limits.configured()
    try:
        http.check_url(url)
    except Refused as exc:
        raise ToolError(f"the page is refused: {exc}") from None
    async with http.within(limits.timeout, "the page"):
        final_url, media_type, body, charset, cut = await _read(url, guard or default_guard(), limits)
    result = await asyncio.to_thread(_readable, final_url, media_type, body, charset)
    if cut:
        result.text += f"\n[the page is longer than {limits.max_bytes} bytes: only its start was read]"
        result.truncated = True
    return result
