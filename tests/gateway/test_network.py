"""The upstream clients' network layer (gateway.network) on asyncio's and uvloop's loops, against real
servers on loopback: what httpx and httpcore expect of it, faults included."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httpcore
import httpx
import pytest
import trustme
import uvloop

from gateway import upstream
from gateway.network import HIGH_WATER, AsyncioBackend, AsyncioStream

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
        with asyncio.Runner(loop_factory=LOOPS[request.param]) as runner:
            return runner.run(asyncio.wait_for(coroutine, 30))

    return run


async def serve(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)
    return server, server.sockets[0].getsockname()[1]


async def read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))


def client(**kwargs: Any) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    transport = httpx.AsyncHTTPTransport(limits=limits)
    transport._pool = httpcore.AsyncConnectionPool(max_connections=4, network_backend=AsyncioBackend(), **kwargs)
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0))


def test_it_streams_a_chunked_answer_piece_by_piece(run: Callable[..., Any]) -> None:
    pieces = [f"data: {n}\n\n".encode() for n in range(50)]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):  # two requests on one kept-alive connection
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in pieces:
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
                await asyncio.sleep(0)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        writer.close()

    async def main() -> list[bytes]:
        server, port = await serve(handler)
        bodies = []
        async with server, client() as http:
            for _ in range(2):
                async with http.stream("POST", f"http://127.0.0.1:{port}/", content=b"{}") as response:
                    bodies.append(b"".join([chunk async for chunk in response.aiter_raw()]))
        return bodies

    assert run(main()) == [b"".join(pieces)] * 2


def test_a_silent_upstream_times_out_as_a_read_timeout(run: Callable[..., Any]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers

    async def main() -> None:
        server, port = await serve(handler)
        async with server, client() as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.post(f"http://127.0.0.1:{port}/", content=b"{}", timeout=httpx.Timeout(5.0, read=0.05))

    run(main())


def test_a_refused_connection_is_a_connect_error(run: Callable[..., Any]) -> None:
    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server, port = await serve(handler)
        server.close()
        await server.wait_closed()
        async with client() as http:
            with pytest.raises(httpx.ConnectError):
                await http.post(f"http://127.0.0.1:{port}/", content=b"{}")

    run(main())


def test_an_upstream_that_hangs_up_mid_answer_is_a_read_error(run: Callable[..., Any]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
        await writer.drain()
        writer.transport.abort()

    async def main() -> None:
        server, port = await serve(handler)
        async with server, client() as http:
            with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                await http.post(f"http://127.0.0.1:{port}/", content=b"{}")

    run(main())


def test_a_closed_connection_reads_empty_then_refuses_writes(run: Callable[..., Any]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        writer.close()

    async def main() -> None:
        server, port = await serve(handler)
        async with server:
            stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
            assert await stream.read(100, timeout=5) == b"bye"
            assert await stream.read(100, timeout=5) == b""
            assert stream.get_extra_info("is_readable")  # an idle pooled connection like this one is dropped
            with pytest.raises(httpcore.WriteError):
                await stream.write(b"more", timeout=5)
            await stream.aclose()

    run(main())


def test_an_open_idle_connection_is_not_readable_and_a_cancelled_read_leaves_it_usable(
    run: Callable[..., Any],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(4)
        writer.write(b"pong")
        await writer.drain()
        await reader.read()

    async def main() -> None:
        server, port = await serve(handler)
        async with server:
            stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
            assert not stream.get_extra_info("is_readable")
            assert stream.get_extra_info("server_addr")[1] == port
            reading = asyncio.ensure_future(stream.read(100, timeout=None))
            await asyncio.sleep(0)
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading
            await stream.write(b"ping", timeout=5)
            assert await stream.read(100, timeout=5) == b"pong"
            await stream.aclose()

    run(main())


def test_it_stops_reading_while_a_large_answer_is_not_consumed(run: Callable[..., Any]) -> None:
    size = 32 * 1024 * 1024  # more than the kernel's socket buffers on both sides hold

    async def main() -> tuple[int, int]:
        done = asyncio.Event()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"x" * size)
            await writer.drain()
            done.set()
            writer.close()

        server, port = await serve(handler)
        async with server:
            stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
            assert isinstance(stream, AsyncioStream)
            first = await stream.read(1, timeout=5)
            # The sender cannot finish while we hold back: the socket buffers fill once we stop reading.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.5)
            buffered = stream._protocol.size
            received = len(first)
            while chunk := await stream.read(65536, timeout=5):
                received += len(chunk)
            await stream.aclose()
            return buffered, received

    buffered, received = run(main())
    assert buffered <= HIGH_WATER + 256 * 1024  # what one more socket read can add past the mark
    assert received == size


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def tls_handler(body: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    return handler


def test_it_speaks_tls_to_an_upstream_whose_certificate_it_trusts(
    run: Callable[..., Any], authority: trustme.CA
) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)

    async def main() -> tuple[bytes, bool]:
        server, port = await serve(tls_handler(b"secret"), server_context)
        url = f"https://127.0.0.1:{port}/"
        async with server, client(ssl_context=client_context) as http, http.stream("POST", url) as response:
            body = await response.aread()
            stream = response.extensions["network_stream"]
            return body, stream.get_extra_info("ssl_object") is not None

    assert run(main()) == (b"secret", True)


def test_it_refuses_an_upstream_certificate_it_does_not_trust(run: Callable[..., Any], authority: trustme.CA) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)

    async def main() -> None:
        server, port = await serve(tls_handler(b"secret"), server_context)
        async with server, client(ssl_context=upstream._tls_context()) as http:
            with pytest.raises(httpx.ConnectError):
                await http.post(f"https://127.0.0.1:{port}/", content=b"{}")

    run(main())


def test_the_gateways_clients_use_this_network_layer(run: Callable[..., Any]) -> None:
    """The gateway's pooled clients answer through gateway.network (faults and all tested above)."""
    target = upstream.Target(name="t", base_url="http://127.0.0.1:9/v1", api_key="", connect_timeout=1, read_timeout=1)

    async def main() -> object:
        transport = upstream.client_for(target)._transport
        assert isinstance(transport, httpx.AsyncHTTPTransport)
        return transport._pool._network_backend

    assert isinstance(run(main()), AsyncioBackend)
