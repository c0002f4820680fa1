"""The guarded HTTP client against a real server on loopback: refused by default, pinned, redirects checked."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest

from core.netguard import Guard, Refused
from tests.tools import pages
from tests.tools.servers import serve
from tools import http

LOOPBACK_ONLY = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve(pages.app) as base:
        yield base


async def fetch_text(guard: Guard, url: str) -> str:
    async with http.client(guard) as client, http.get(client, url) as response:
        await response.aread()
        return response.text


async def test_the_default_guard_refuses_a_server_on_loopback(site: str) -> None:
    with pytest.raises(Refused, match="loopback"):
        await fetch_text(Guard(), f"{site}/article")


async def test_the_default_guard_refuses_a_name_resolving_to_loopback(site: str) -> None:
    async def resolver(name: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    port = urlsplit(site).port
    with pytest.raises(Refused, match=r"rebind\.example resolves to a loopback address"):
        await fetch_text(Guard(resolver=resolver), f"http://rebind.example:{port}/article")


async def test_allow_internal_reaches_the_server(site: str) -> None:
    assert "Sea otters" in await fetch_text(Guard(allow_internal=True), f"{site}/article")


async def test_it_connects_to_the_address_checked_and_keeps_the_name_in_the_host_header(site: str) -> None:
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])  # a rebinding DNS server: a second lookup would differ
    lookups: list[str] = []

    async def rebinding(name: str, port: int) -> list[str]:
        lookups.append(name)
        return next(answers)

    port = urlsplit(site).port
    text = await fetch_text(Guard(allowed=LOOPBACK_ONLY, resolver=rebinding), f"http://pinned.example:{port}/host")
    assert text == f"host=pinned.example:{port}"
    assert lookups == ["pinned.example"]


@pytest.mark.parametrize(
    "target", ["http://127.0.0.2/", "http://0x7f000002/", "http://[::1]/", "http://169.254.169.254/latest/meta-data/"]
)
async def test_a_redirect_to_an_internal_address_is_refused(site: str, target: str) -> None:
    with pytest.raises(Refused):
        await fetch_text(Guard(allowed=LOOPBACK_ONLY), f"{site}/redirect?to={quote(target)}")


async def test_a_redirect_to_another_scheme_is_refused(site: str) -> None:
    with pytest.raises(Refused, match="only http and https"):
        await fetch_text(Guard(allowed=LOOPBACK_ONLY), f"{site}/redirect?to={quote('file:///etc/passwd')}")


async def test_redirects_are_followed_a_bounded_number_of_times(site: str) -> None:
    assert "Sea otters" in await fetch_text(Guard(allowed=LOOPBACK_ONLY), f"{site}/redirect?to=/article")
    with pytest.raises(Refused, match="more than 5 redirects"):
        await fetch_text(Guard(allowed=LOOPBACK_ONLY), f"{site}/loop")


async def test_the_metadata_address_is_refused_even_to_an_admins_server(site: str) -> None:
    with pytest.raises(Refused, match="metadata"):
        await fetch_text(Guard(allow_internal=True), f"{site}/redirect?to={quote('http://169.254.169.254/')}")
