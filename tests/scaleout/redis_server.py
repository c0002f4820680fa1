"""A real Redis server (Debian's redis-server) on a free loopback port, for limits and scale-out tests.

`make test` installs redis-server through scripts/system-deps.sh. Without it the tests that need
it skip on a developer's machine and fail in CI (CI=true), as the house rules want.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.live_server import free_port
from tests.needs import missing


@dataclass
class RedisServer:
    url: str
    process: subprocess.Popen[bytes]

    def flush(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            client.flushdb()
        finally:
            client.close()


def store_under_test(request: pytest.FixtureRequest, settings: Any) -> str:
    """For a fixture parametrized by store: REDIS_URL at the session's Redis, emptied, when the parameter
    is "redis", else unset (each process's own state, or PostgreSQL). Returns the parameter."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()
        settings.REDIS_URL = server.url
    else:
        settings.REDIS_URL = None
    return str(request.param)


def start_redis(port: int | None = None) -> RedisServer:
    """A fresh Redis without persistence, on `port` (a free one if None)."""
    binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin:/usr/bin")
    if binary is None:
        missing("redis-server is not installed (scripts/system-deps.sh installs it: apt-get install redis-server)")
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="redis-test-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(f"redis://127.0.0.1:{port}/0", process)
    import redis

    deadline = time.monotonic() + 20
    while True:
        try:
            client = redis.Redis.from_url(server.url, socket_timeout=1)
            client.ping()
            client.close()
            return server
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
