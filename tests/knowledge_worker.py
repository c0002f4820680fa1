"""The knowledge ingestion worker as a real process (`manage.py knowledge_worker`) on the test database.

from tests.knowledge_worker import start_worker  # noqa: F401  (the fixture)
start_worker()                                    # returns once the worker says it is ready
entry = settled(entry)                            # waits until the file leaves `in_progress`
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from chatsite.worker import database_url
from knowledge.models import VectorStoreFile

# Generous: a deadline for an event on a loaded machine, never a measure of speed.
DEADLINE = 120.0


@pytest.fixture
def start_worker() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """`env`: the worker's environment (default: this one's, on the test database)."""
        process = subprocess.Popen(
            [sys.executable, "-m", "django", "knowledge_worker"],
            cwd=Path(settings.BASE_DIR),
            env=env
            or {
                **os.environ,
                "DATABASE_URL": database_url(connection.settings_dict),
                "DJANGO_SETTINGS_MODULE": "chatsite.settings",
            },
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        for line in process.stdout:
            if "knowledge worker ready" in line:
                return process
        raise AssertionError(f"the worker ended before it was ready (exit {process.wait()})")

    yield start
    for process in started:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def settled(entry: VectorStoreFile) -> VectorStoreFile:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        entry.refresh_from_db()
        if entry.status != VectorStoreFile.Status.IN_PROGRESS:
            return entry
        time.sleep(0.1)
    raise AssertionError("the file was never ingested")
