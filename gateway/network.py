"""httpcore's network layer on plain asyncio protocols, for the upstream clients.

httpcore's default backend goes through anyio: every read of an upstream's stream opened a cancel
scope (`fail_after`), asked sniffio which library runs and polled the socket, about 55 µs of CPU
per streamed chunk with 200 paced streams, a fifth of it in anyio alone (measured with py-spy).
Here a read takes what the protocol already received, or waits on one future with a timer
for its timeout; whether an idle connection was closed by the server is what the protocol saw,
without a poll() per pooled connection on every request.

Faults are httpcore's own exceptions, which httpx maps to its own (ConnectError, ReadTimeout...).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any, cast

import httpcore

# Reading stops above this many unread bytes and resumes below a quarter of it (flow control).
HIGH_WATER = 256 * 1024


class _Protocol(asyncio.Protocol):
    """What arrived on one connection, and the one reader (or writer) waiting on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.eof = False
        self.error: Exception | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.waiter: asyncio.Future[bool] | None = None
        self.drained: asyncio.Future[bool] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        if self.size > HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # close the transport: HTTP/1.1 never half-closes usefully

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake_reader()
        self.writing_paused = False
        self._wake_writer()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_writer()

    def _wake_reader(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def _wake_writer(self) -> None:
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(True)

    def take(self, max_bytes: int) -> bytes:
        chunks = self.chunks
        if len(chunks) == 1 and len(chunks[0]) <= max_bytes:
            data = chunks.popleft()
        else:
            data = b"".join(chunks)
            chunks.clear()
            if len(data) > max_bytes:
                chunks.append(data[max_bytes:])
                data = data[:max_bytes]
        self.size -= len(data)
        if self.reading_paused and self.size < HIGH_WATER // 4 and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return data


async def _wait(future: asyncio.Future[bool], timeout: float | None) -> bool:
    """True when the future was resolved, False when the timeout passed first."""
    if timeout is None:
        return await future
    handle = asyncio.get_running_loop().call_later(timeout, _expire, future)
    try:
        return await future
    finally:
        handle.cancel()


def _expire(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        # Read now: asyncio's TLS transport answers nothing (it raises) once closed.
        self._ssl_object = transport.get_extra_info("ssl_object")
        self._socket = transport.get_extra_info("socket")
        self._addresses = (transport.get_extra_info("sockname"), transport.get_extra_info("peername"))

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.chunks:
            if protocol.eof:
                return self._at_end()
            waiter = protocol.waiter = asyncio.get_running_loop().create_future()
            try:
                arrived = await _wait(waiter, timeout)
            finally:
                if protocol.waiter is waiter:
                    protocol.waiter = None
            if not arrived:
                raise httpcore.ReadTimeout("timed out reading from the upstream")
            if not protocol.chunks:
                return self._at_end()
        return protocol.take(max_bytes)

    def _at_end(self) -> bytes:
        if self._protocol.error is not None:
            raise httpcore.ReadError(str(self._protocol.error) or self._protocol.error.__class__.__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if self._transport.is_closing() or (protocol.eof and protocol.error is not None):
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        if protocol.writing_paused:
            drained = protocol.drained = asyncio.get_running_loop().create_future()
            if not await _wait(drained, timeout):
                raise httpcore.WriteTimeout("timed out writing to the upstream")
            if protocol.error is not None:
                raise httpcore.WriteError(str(protocol.error) or protocol.error.__class__.__name__)

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._transport.close()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(str(exc) or exc.__class__.__name__) from None
        if transport is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._protocol.transport = transport
        return AsyncioStream(transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # An idle connection with something to read is one the server closed (or broke).
            return bool(self._protocol.chunks) or self._protocol.eof
        if info == "client_addr":
            return self._addresses[0]
        if info == "server_addr":
            return self._addresses[1]
        if info == "ssl_object":
            return self._ssl_object
        if info == "socket":
            return self._socket
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(_Protocol, host, port, local_addr=local)
        except TimeoutError:
            raise httpcore.ConnectTimeout("timed out connecting to the upstream") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or exc.__class__.__name__) from None
        return self._stream(transport, protocol, socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_unix_connection(_Protocol, path)
        except TimeoutError:
            raise httpcore.ConnectTimeout("timed out connecting to the upstream") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or exc.__class__.__name__) from None
        return self._stream(transport, protocol, socket_options)

    @staticmethod
    def _stream(
        transport: asyncio.BaseTransport, protocol: _Protocol, socket_options: Iterable[Any] | None
    ) -> AsyncioStream:
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(cast(asyncio.Transport, transport), protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
