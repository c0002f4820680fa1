"""The real ASGI application served by a real server process, against the test database.

`start_server()` runs daphne (or uvicorn) on a free loopback port as a child process with
DATABASE_URL pointing at pytest-django's test database, waits until `/healthz` answers, and
returns a `LiveServer`. The `live_server` fixture in tests/conftest.py keeps one for the session;
tests that use it need `transactional_db` so what they write is visible to the server.
Several servers may share one database and one Redis (scale-out tests pass REDIS_URL in `env`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for the database Django is connected to (a unix socket directory works too)."""
    user = quote(settings_dict.get("USER") or "postgres", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    host = quote(settings_dict.get("HOST") or "127.0.0.1", safe="")
    port = settings_dict.get("PORT") or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    return f"postgres://{auth}{host}{':' + str(port) if port else ''}/{quote(settings_dict['NAME'], safe='')}"


class _NoSettingsToOverride:
    def enable(self) -> None:
        pass

    def disable(self) -> None:
        pass


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    # pytest-django's autouse helper, triggered by the fixture name `live_server`, requests
    # `transactional_db` for the test (what we want) and toggles this settings override (a no-op:
    # our server is another process).
    _live_server_modified_settings: _NoSettingsToOverride = field(default_factory=_NoSettingsToOverride)

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_server(
    settings_dict: dict[str, Any],
    secret_key: str,
    *,
    server: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    application_name: str | None = None,
) -> LiveServer:
    server = server or os.environ.get("LIVE_SERVER", "daphne")
    port = free_port()
    if server == "daphne":
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "chatsite.asgi:application"]
    elif server == "uvicorn":
        command = [
            sys.executable, "-m", "uvicorn", "chatsite.asgi:application",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--lifespan", "on",
        ]  # fmt: skip
    else:
        raise ValueError(f"unknown server {server!r}")
    # A name makes the server's own PostgreSQL sessions findable (a test ends only those).
    named = f"?application_name={application_name}" if application_name else ""
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DATABASE_URL": database_url(settings_dict) + named,
        "SECRET_KEY": secret_key,
        "DEBUG": "0",
        "HTTPS": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": os.environ.get("LIVE_SERVER_LOG_LEVEL", "WARNING"),
        # Its own var/: the checkout's var/static (left by `make run`'s collectstatic) would serve
        # stale copies of the JS and CSS under test instead of the source files.
        "VAR_DIR": tempfile.mkdtemp(prefix="live-var-"),
        **(env or {}),
    }
    child_env.pop("TEST_DATABASE_NAME", None)
    log_path = Path(tempfile.mkstemp(prefix=f"live-{server}-{port}-", suffix=".log")[1])
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT)
    live = LiveServer(f"http://127.0.0.1:{port}", process, log_path, child_env)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{server} exited with {process.returncode}:\n{live.log()[-4000:]}")
        try:
            if httpx.get(live.url + "/healthz", timeout=1).status_code == 200:
                return live
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            live.stop()
            raise RuntimeError(f"{server} did not answer within {timeout}s:\n{live.log()[-4000:]}")
        time.sleep(0.1)
