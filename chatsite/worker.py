"""`make run`'s background worker: the knowledge ingestion queue's, a child process stopped with the launcher."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys

from django.conf import settings

from chatsite.local_model import _die_with_parent


def start_knowledge_worker() -> subprocess.Popen[bytes]:
    # Ctrl-C reaches it with the launcher (same process group); atexit and the parent-death signal cover the rest.
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "knowledge_worker"],
        cwd=settings.BASE_DIR,
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
