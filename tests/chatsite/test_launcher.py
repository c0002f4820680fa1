"""`make run` serves with the server SERVER names at once, prepares the local model meanwhile, and stops when asked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from accounts.keys import create_key
from accounts.models import User
from chatsite import local_model
from tests.fake_upstream import FakeUpstream
from tests.live_server import database_url, free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def _wait_until_ready(process: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the launcher did not answer"
        time.sleep(0.1)


@pytest.mark.parametrize(("server", "access_log"), [("uvicorn", False), ("daphne", False), ("uvicorn", True)])
def test_make_run_serves_with_the_chosen_server_and_stops_on_sigterm(server: str, access_log: bool) -> None:
    from django.conf import settings
    from django.db import connection

    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DATABASE_URL": database_url(dict(connection.settings_dict)),
        "SECRET_KEY": settings.SECRET_KEY,
        "SERVER": server,
        "PORT": str(port),
        "LOCAL_MODEL": "0",
        "ADMIN_PASSWORD": "a-long-and-unusual-password",
        "VAR_DIR": tempfile.mkdtemp(prefix="launcher-var-"),
        "LOG_LEVEL": "WARNING",
        "ACCESS_LOG": "1" if access_log else "0",
    }
    env.pop("TEST_DATABASE_NAME", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "chatsite.launcher"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        _wait_until_ready(process, port, 120)
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10)
        assert answer.status_code == 401  # the API answers, in OpenAI's error shape
        assert answer.json()["error"]["code"] == "invalid_api_key"
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
    assert f"Serving on http://127.0.0.1:{port}/ with {server}" in output
    assert ("GET /v1/models" in output) == access_log  # a line per request only when asked


def _postgres_processes(pgdata: Path) -> list[int]:
    """The pids of processes serving `pgdata` (the postmaster and its children name it in their command)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(pgdata).encode() in command:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
def test_sigterm_to_make_runs_process_group_stops_the_embedded_postgresql(server: str) -> None:
    port = free_port()
    var = Path(tempfile.mkdtemp(prefix="launcher-pg-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "SERVER": server,
        "PORT": str(port),
        "LOCAL_MODEL": "0",
        "ADMIN_PASSWORD": "a-long-and-unusual-password",
        "VAR_DIR": str(var),
        "LOG_LEVEL": "WARNING",
    }
    for name in ("DATABASE_URL", "TEST_DATABASE_NAME"):
        env.pop(name, None)
    # Its own process group, as `make run` in a terminal or under a process manager.
    process = subprocess.Popen(
        [sys.executable, "-m", "chatsite.launcher"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_until_ready(process, port, 150)
        assert _postgres_processes(var / "pgdata")  # the embedded PostgreSQL serves it
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
    deadline = time.monotonic() + 10  # pg_ctl stop waits for the server; its children may linger a moment
    while _postgres_processes(var / "pgdata") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _postgres_processes(var / "pgdata") == [], output
    assert not (var / "pgdata" / "postmaster.pid").exists()


def test_the_site_serves_while_the_local_model_is_prepared_and_lists_it_once_it_runs(
    as_alice: httpx.Client, alice: User, fake_upstream: FakeUpstream, settings: Any
) -> None:
    settings.LOCAL_MODEL = True
    _, secret = create_key(alice, "models")
    api = {"Authorization": f"Bearer {secret}"}
    local_model.register("http://127.0.0.1:9/v1", 8192, 2048)  # the last run's rows: its server is gone
    started = threading.Event()

    def start() -> list[local_model.LocalModelServer]:  # the llama.cpp server's part, played by a fake upstream
        assert started.wait(60)
        local_model.register(fake_upstream.base_url, 8192, 2048)
        return []

    preparation = local_model.prepare_local_model(start=start)
    assert preparation is not None

    listed = as_alice.get("/v1/models", headers=api).json()
    assert local_model.MODEL_ID not in [m["id"] for m in listed["data"]]  # hidden: nothing serves it yet
    assert listed["preparing"] == [{"id": local_model.MODEL_ID, "status": "starting it"}]
    page = as_alice.get("/").text
    assert f"The model {local_model.MODEL_ID} is being prepared" in page
    assert 'http-equiv="refresh"' in page

    started.set()
    assert preparation.done.wait(60)
    listed = as_alice.get("/v1/models", headers=api).json()
    assert local_model.MODEL_ID in [m["id"] for m in listed["data"]]
    assert "preparing" not in listed
    page = as_alice.get("/").text
    assert "is being prepared" not in page and 'http-equiv="refresh"' not in page
    assert f'<option value="{local_model.MODEL_ID}"' in page
