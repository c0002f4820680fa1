"""How long `make run` takes on a clean clone before a newcomer can sign in, and before the local model answers.

    .venv/bin/python bench/time_to_serve.py [--keep]

Clones this checkout's HEAD into a temporary directory (no .venv, no var/), runs `make run` there on a free
port with the machine's pip cache as it is (warm when this machine installed the project before), and
prints the seconds until the sign-in page answers and until the launcher says the local model is ready.
Then it stops `make run` with SIGTERM. Everything listens on 127.0.0.1; it gives up after 20 minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.live_server import free_port  # noqa: E402

LIMIT = 20 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="leave the clone in place")
    args = parser.parse_args()
    clone = Path(tempfile.mkdtemp(prefix="time-to-serve-")) / "chatsite"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "VIRTUAL_ENV", "REDIS_URL")}
    env.update(PORT=str(port), ADMIN_PASSWORD="a-long-and-unusual-password", LOCAL_MODEL_SERVERS="1")
    started = time.monotonic()
    process = subprocess.Popen(
        ["make", "run"], cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    marks: dict[str, float] = {}

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            print(f"  [{time.monotonic() - started:6.1f}s] {line}", flush=True)
            if "Serving on" in line:
                marks.setdefault("launcher serving", time.monotonic() - started)
            if "ready in" in line:
                marks.setdefault("local model ready", time.monotonic() - started)
            if "Local model not started" in line:
                marks.setdefault("local model failed", time.monotonic() - started)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while time.monotonic() - started < LIMIT and process.poll() is None:
            if "sign-in page" not in marks:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=2).status_code == 200:
                        marks["sign-in page"] = time.monotonic() - started
                except httpx.HTTPError:
                    pass
            if "local model ready" in marks or "local model failed" in marks:
                break
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(60)
        reader.join(5)
        if not args.keep:
            shutil.rmtree(clone.parent, ignore_errors=True)
    print("\nmake run on a clean clone:")
    for name, seconds in sorted(marks.items(), key=lambda item: item[1]):
        print(f"  {name:<20} {seconds:7.1f} s")


if __name__ == "__main__":
    main()
