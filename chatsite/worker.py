"""`make run`'s background worker: the knowledge ingestion queue's, a child process stopped with the launcher."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from django.conf import settings

from chatsite.local_model import _die_with_parent


def database_url(params: Mapping[str, Any]) -> str:
    """A DATABASE_URL for a Django connection's settings (a Unix socket's folder as a percent-encoded host)."""
    host = quote(str(params["HOST"]), safe="")
    port = f":{params['PORT']}" if params["PORT"] else ""
    return f"postgresql://{quote(str(params['USER']), safe='')}@{host}{port}/{params['NAME']}"


def start_knowledge_worker() -> subprocess.Popen[bytes] | None:
    if not settings.KNOWLEDGE_WORKER:
        print("==> Knowledge worker: off (KNOWLEDGE_WORKER=0); run `manage.py knowledge_worker` elsewhere", flush=True)
        return None
    # Ctrl-C reaches it with the launcher (same process group); atexit and the parent-death signal cover the rest.
    # It connects by URL, never holding the embedded PostgreSQL itself: the launcher stops that last, after it.
    from django.db import connection

    process = subprocess.Popen(
        [sys.executable, "-m", "django", "knowledge_worker"],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DATABASE_URL": os.environ.get("DATABASE_URL") or database_url(connection.settings_dict)},
        preexec_fn=_die_with_parent(os.getpid()),
    )
    atexit.register(_stop, process)
    return process


def _stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
