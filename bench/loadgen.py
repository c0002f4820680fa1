"""A small HTTP/1.1 keep-alive load generator on raw asyncio streams.

Python HTTP clients cost more CPU per request than the servers under test; this one parses only
what it needs (status, Content-Length or chunked framing, SSE `data:` events), so on a shared
2-core machine it leaves the cores to the servers being measured.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    requests: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    chunks: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.elapsed if self.elapsed else 0.0

    def pct(self, values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def p50(self) -> float:
        return self.pct(self.latencies, 0.50)

    @property
    def p99(self) -> float:
        return self.pct(self.latencies, 0.99)

    @property
    def ttft_p50(self) -> float:
        return statistics.median(self.ttfts) * 1000 if self.ttfts else float("nan")


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    async def request(self, raw: bytes) -> tuple[int, float | None, int]:
        """Send one request; return (status, seconds to the first SSE event or None, SSE events)."""
        assert self.reader is not None and self.writer is not None
        started = time.perf_counter()
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        first: float | None = None
        events = 0
        if b"transfer-encoding: chunked" in lower:
            while True:
                size_line = await self.reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                data = await self.reader.readexactly(size + 2)
                count = data.count(b"data: {")
                if count and first is None:
                    first = time.perf_counter() - started
                events += count
        else:
            marker = lower.find(b"content-length:")
            length = int(lower[marker + 15 : lower.find(b"\r\n", marker)]) if marker >= 0 else 0
            await self.reader.readexactly(length)
        if b"connection: close" in lower:
            self.close()
            await self.open()
        return status, first, events


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", "Connection: keep-alive"]  # fmt: skip
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def run_load(host: str, port: int, raw: bytes, concurrency: int, duration: float) -> Result:
    """`concurrency` connections sending `raw` back to back for `duration` seconds."""
    deadline = time.perf_counter() + duration
    return await _drive(host, port, raw, concurrency, lambda: time.perf_counter() < deadline)


async def run_requests(host: str, port: int, raw: bytes, concurrency: int, total: int) -> Result:
    """`total` requests sent over `concurrency` connections, back to back."""
    left = [total]

    def more() -> bool:
        left[0] -= 1
        return left[0] >= 0

    return await _drive(host, port, raw, concurrency, more)


async def _drive(host: str, port: int, raw: bytes, concurrency: int, more: Callable[[], bool]) -> Result:
    result = Result()

    async def worker() -> None:
        connection = Connection(host, port)
        await connection.open()
        try:
            while more():
                started = time.perf_counter()
                try:
                    status, first, events = await connection.request(raw)
                except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                    result.errors += 1
                    connection.close()
                    await connection.open()
                    continue
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status != 200:
                    result.errors += 1
                result.requests += 1
                result.chunks += events
                if first is not None:
                    result.ttfts.append(first)
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result
