"""The SSRF guard: every spelling of an internal address is refused; public ones pass; names are checked resolved."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.netguard import Guard, Refused, address_problem, parse_literal

INTERNAL_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "0x7f000001",
    "2130706433",
    "017700000001",
    "0177.0.0.1",
    "0x7f.0.0.1",
    "::ffff:7f00:1",
    "::ffff:127.0.0.1",
    "[::ffff:7f00:1]",
    "::1",
    "[::1]",
    "[::]",
    "0.0.0.0",  # noqa: S104
    "0",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "169.254.1.1",
    "fd00:ec2::254",
    "fc00::1",
    "fe80::1%eth0",
    "[fe80::1%25eth0]",
    "224.0.0.1",
    "ff02::1",
    "240.0.0.1",
    "255.255.255.255",
    "2002:7f00:1::",  # 6to4 around 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
    "192.0.2.10",  # documentation
]


def refused(host: str, guard: Guard | None = None) -> str:
    import asyncio

    with pytest.raises(Refused) as caught:
        asyncio.run((guard or Guard()).check(host, 80))
    return str(caught.value)


@pytest.mark.parametrize("host", INTERNAL_SPELLINGS)
def test_it_refuses_every_spelling_of_an_internal_address(host: str) -> None:
    assert host.split("%")[0] in refused(host) or host in refused(host)


@pytest.mark.parametrize("host", ["localhost", "localhost.", "LOCALHOST", "api.localhost", "metadata.google.internal"])
def test_it_refuses_names_of_this_machine_and_of_metadata_before_any_lookup(host: str) -> None:
    async def no_lookup(name: str, port: int) -> list[str]:
        raise AssertionError("looked up")

    assert "is a" in refused(host, Guard(resolver=no_lookup))


@pytest.mark.parametrize("answer", [["127.0.0.1"], ["93.184.216.34", "10.1.2.3"], ["::ffff:169.254.169.254"]])
def test_it_refuses_a_name_resolving_to_an_internal_address(answer: list[str]) -> None:
    async def resolver(name: str, port: int) -> list[str]:
        return answer

    assert "evil.example resolves to" in refused("evil.example", Guard(resolver=resolver))


def test_a_name_that_does_not_resolve_is_refused() -> None:
    async def resolver(name: str, port: int) -> list[str]:
        raise OSError("no such name")

    assert "could not be resolved" in refused("nowhere.example", Guard(resolver=resolver))


@pytest.mark.parametrize("host", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "[2606:4700:4700::1111]"])
async def test_it_lets_public_addresses_through(host: str) -> None:
    assert ipaddress.ip_address(await Guard().check(host, 443)) == parse_literal(host)


async def test_it_connects_to_the_first_checked_address_of_a_public_name() -> None:
    async def resolver(name: str, port: int) -> list[str]:
        return ["93.184.216.34", "2606:2800:220:1::1"]

    assert await Guard(resolver=resolver).check("example.com", 443) == "93.184.216.34"


async def test_allow_internal_lets_an_admins_server_on_internal_addresses_but_never_metadata() -> None:
    guard = Guard(allow_internal=True)
    assert await guard.check("10.0.0.5", 80) == "10.0.0.5"
    assert await guard.check("0x7f000001", 80) == "127.0.0.1"
    for metadata in ("169.254.169.254", "::ffff:a9fe:a9fe", "fd00:ec2::254", "metadata.google.internal"):
        with pytest.raises(Refused, match="metadata"):
            await guard.check(metadata, 80)


async def test_allowed_networks_let_through_exactly_those_addresses() -> None:
    guard = Guard(allowed=(ipaddress.ip_network("127.0.0.1/32"),))
    assert await guard.check("127.0.0.1", 80) == "127.0.0.1"
    with pytest.raises(Refused):
        await guard.check("127.0.0.2", 80)


PRIVATE_V4 = ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
private_v4 = st.sampled_from([ipaddress.ip_network(n) for n in PRIVATE_V4]).flatmap(
    lambda net: st.integers(int(net.network_address), int(net.broadcast_address))
)


def spellings(number: int) -> list[str]:
    dotted = str(ipaddress.IPv4Address(number))
    octets = dotted.split(".")
    return [
        dotted,
        str(number),
        hex(number),
        "0" + oct(number)[2:],
        ".".join(hex(int(o)) for o in octets),
        ".".join("0" + oct(int(o))[2:] for o in octets),
        f"{octets[0]}.{int(octets[1]) << 16 | int(octets[2]) << 8 | int(octets[3])}",
        f"::ffff:{dotted}",
        f"::ffff:{number >> 16:x}:{number & 0xFFFF:x}",
        f"[::ffff:{dotted}]",
        f"64:ff9b::{dotted}",
    ]


@given(private_v4)
def test_no_spelling_of_a_private_ipv4_address_gets_through(number: int) -> None:
    for spelling in spellings(number):
        address = parse_literal(spelling)
        assert address is not None, spelling
        assert address_problem(address) is not None, spelling


@given(st.integers(0, 2**32 - 1))
def test_every_spelling_of_an_address_means_that_address(number: int) -> None:
    expected = ipaddress.IPv4Address(number)
    for spelling in spellings(number)[:7]:
        assert parse_literal(spelling) == expected, spelling
