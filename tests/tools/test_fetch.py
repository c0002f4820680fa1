"""Page reading against a page server on loopback: readable text, types, caps, redirects to internal addresses."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from core.netguard import Guard
from tests.tools import pages
from tests.tools.servers import serve
from tools.fetch import Limits, read_page
from tools.results import ToolError

# The page server is on 127.0.0.1: exactly that address is let through, nothing else internal.
GUARD = Guard(allowed=(ipaddress.ip_network("127.0.0.1/32"),))
LIMITS = Limits(max_bytes=100_000, timeout=30)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve(pages.app) as base:
        yield base


async def test_it_reads_a_pages_main_text_without_menus_or_scripts(site: str) -> None:
    result = await read_page(f"{site}/article", guard=GUARD, limits=LIMITS)
    assert "Sea otters hold hands while they sleep" in result.text
    assert "Home" not in result.text and "do not read me" not in result.text
    assert [(s.title, s.url) for s in result.sources] == [("Sea otters hold hands", f"{site}/article")]
    assert not result.is_error and not result.truncated


async def test_json_comes_back_as_it_is(site: str) -> None:
    assert (await read_page(f"{site}/data", guard=GUARD, limits=LIMITS)).text == '{"answer":42}'


async def test_a_type_outside_the_allow_list_is_refused(site: str) -> None:
    with pytest.raises(ToolError, match="application/zip are not read"):
        await read_page(f"{site}/binary", guard=GUARD, limits=LIMITS)


async def test_the_default_guard_refuses_a_page_on_loopback(site: str, settings: Any) -> None:
    settings.TOOLS_INTERNAL_NETWORKS = []
    with pytest.raises(ToolError, match=r"refused: 127\.0\.0\.1 is a loopback address"):
        await read_page(f"{site}/article", limits=LIMITS)


@pytest.mark.parametrize(
    "target", ["http://127.0.0.2/", "http://2130706434/", "http://[::ffff:7f00:2]/", "http://169.254.169.254/"]
)
async def test_a_redirect_to_an_internal_address_is_refused(site: str, target: str) -> None:
    with pytest.raises(ToolError, match="refused"):
        await read_page(f"{site}/redirect?to={quote(target)}", guard=GUARD, limits=LIMITS)


async def test_a_redirect_within_the_allowed_site_is_followed(site: str) -> None:
    result = await read_page(f"{site}/redirect?to=/article", guard=GUARD, limits=LIMITS)
    assert result.sources[0].url == f"{site}/article"


async def test_a_huge_body_is_cut_at_the_size_cap(site: str) -> None:
    result = await read_page(f"{site}/huge", guard=GUARD, limits=Limits(max_bytes=200_000, timeout=30))
    assert result.truncated
    assert "only its start was read" in result.text
    assert len(result.text) < 200_000 + 100


async def test_a_page_that_never_finishes_is_a_tool_error_at_the_time_cap(site: str) -> None:
    with pytest.raises(ToolError, match=r"the page did not answer within 0\.5 seconds"):
        await read_page(f"{site}/slow", guard=GUARD, limits=Limits(max_bytes=100_000, timeout=0.5))


async def test_an_error_status_is_a_tool_error(site: str) -> None:
    with pytest.raises(ToolError, match="HTTP 404"):
        await read_page(f"{site}/missing", guard=GUARD, limits=LIMITS)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/", "http://user:pw@example.org/", "nope"])
async def test_only_plain_http_urls_are_read(url: str) -> None:
    with pytest.raises(ToolError, match="refused"):
        await read_page(url, guard=GUARD, limits=LIMITS)
