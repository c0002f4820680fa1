"""Which network addresses a request made on a user's behalf may reach (the SSRF rules), in one place.

A URL a user, a model or a web page chose must not reach this machine, its private network or a cloud's
metadata service. The name is resolved once; every address it resolves to must be public, whatever the
spelling (`0x7f000001`, `2130706433`, `017700000001`, `127.1`, `::ffff:7f00:1`, `[::]`, `fe80::1%eth0`,
`localhost.`); the connection then goes to the address checked, never to a second resolution of the
name (a rebinding DNS server cannot swap it). An HTTP client gets that through `GuardedBackend`, which
wraps an httpcore-style network backend: the URL keeps its name, so TLS's SNI and the Host header do too.

`allow_internal` is for servers an admin registered on purpose; cloud metadata stays refused even then.
This module imports nothing of the project's, so any app (tools, provider and image fetches) can use it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack...
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task credentials
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    }
)
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """The destination is not one this request may reach; the message names the host, never a credential."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, compatible), which is where it goes."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(
    address: IPAddress, *, allow_internal: bool = False, allowed: tuple[IPNetwork, ...] = ()
) -> str | None:
    """Why `address` may not be reached, or None when it may (`allowed`: internal networks let through)."""
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(address.compressed.split("%")[0])  # a zone id changes nothing
        inner = _embedded_ipv4(address)
        if inner is not None:
            return address_problem(inner, allow_internal=allow_internal, allowed=allowed)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if allow_internal or any(address in network for network in allowed):
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved address"
    return None


def parse_literal(host: str) -> IPAddress | None:
    """The address `host` spells, in any of the spellings the C library accepts, or None for a name."""
    bare = host.strip().removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(bare.split("%")[0])
    except ValueError:
        pass
    if bare.endswith("."):
        bare = bare[:-1]
    if bare and all(part.isalnum() for part in bare.split(".")):
        try:
            # inet_aton reads the old forms: 127.1, 0x7f000001, 2130706433, 017700000001, 0177.0.0.1.
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def name_problem(host: str) -> str | None:
    """Why a host name is refused before any lookup (names that only ever mean this machine or metadata)."""
    name = host.strip().rstrip(".").lower()
    if not name:
        return "no host"
    if name == "localhost" or name.endswith(".localhost") or name in {"localhost6", "ip6-localhost"}:
        return "a name of this machine"
    if name in METADATA_NAMES:
        return "a cloud metadata name"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Guard:
    """The rule for one client: whether internal addresses are allowed, and how names are resolved.

    `allowed` lists internal networks reachable all the same (the operator's own services).
    """

    allow_internal: bool = False
    allowed: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=system_resolver)

    async def check(self, host: str, port: int) -> str:
        """The address to connect to for `host`, every address it resolves to having been checked."""
        literal = parse_literal(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            problem = name_problem(host)
            if problem and not (problem == "a name of this machine" and (self.allow_internal or self.allowed)):
                raise Refused(f"{host} is {problem}")
            try:
                found = await self.resolver(host, port)
            except OSError as exc:
                raise Refused(f"{host} could not be resolved ({exc.__class__.__name__})") from None
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in found]
            if not addresses:
                raise Refused(f"{host} could not be resolved")
        for address in addresses:
            problem = address_problem(address, allow_internal=self.allow_internal, allowed=self.allowed)
            if problem:
                raise Refused(f"{host} is {problem}" if literal else f"{host} resolves to {problem}")
        return str(addresses[0])


class GuardedBackend:
    """An httpcore(2) network backend that connects only to addresses the guard passed, pinned.

    httpcore hands `connect_tcp` the URL's host and does TLS with the URL's host as SNI, so connecting
    to the checked address here keeps certificates and virtual hosts working.
    """

    def __init__(self, inner: Any, guard: Guard) -> None:
        self._inner = inner
        self.guard = guard

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (the httpcore interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> Any:
        address = await self.guard.check(host, port)
        return await self._inner.connect_tcp(
            address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:  # noqa: ASYNC109
        raise Refused("unix sockets are not reachable")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
