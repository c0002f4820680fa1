"""What the gateway costs: the same load at a fast fake upstream, direct and through the gateway.

    .venv/bin/python bench/gateway_overhead.py [--duration 5] [--servers uvicorn,daphne]

Everything runs on loopback and stops by itself: an embedded PostgreSQL database `chatsite_bench`
(recreated each run), the fast upstream (bench/fast_upstream.py), and the gateway served by each
ASGI server in turn (one process). The load generator (bench/loadgen.py) drives, in one run:
non-streaming requests at concurrency 1 and 32 (req/s, p50, p99) and streaming at concurrency 32
(time to first token, chunks/s); then it reads the gateway's peak memory. It prints every figure
and the gateway/direct ratios. Figures are only comparable within one run: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import Result, build_request, run_load  # noqa: E402
from tests.live_server import database_url, free_port  # noqa: E402

MODEL = "bench/fast-model"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello in one short sentence."}], "max_tokens": 64}


def prepare_database() -> tuple[str, str]:
    """Create a fresh bench database, migrate it, seed a user, key, provider and model."""
    from chatsite.embedded_db import ensure_embedded_postgres

    if os.environ.get("DATABASE_URL"):
        sys.exit("bench: unset DATABASE_URL; the benchmark makes its own database in the embedded PostgreSQL")
    import psycopg

    uri = ensure_embedded_postgres(ROOT / "var" / "pgdata")
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS chatsite_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE chatsite_bench")
    from urllib.parse import parse_qs, urlparse

    parsed = urlparse(uri)
    url = database_url(
        {"USER": parsed.username, "HOST": parse_qs(parsed.query)["host"][0], "PORT": "", "NAME": "chatsite_bench"}
    )
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    return url, settings.SECRET_KEY


def seed(upstream_url: str) -> str:
    from accounts.keys import create_key
    from accounts.models import User
    from catalogue.models import LanguageModel, Provider

    user = User.objects.create_user("bench", password="a-long-and-unusual-password")
    provider = Provider.objects.create(name="bench-upstream", base_url=upstream_url)
    LanguageModel.objects.create(
        public_id=MODEL, provider=provider, upstream_model="fast-model", context_length=8192, max_output_tokens=4096
    )
    _key, secret = create_key(user, "bench")
    return secret


def start(command: list[str], env: dict[str, str], port: int, name: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    import socket

    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"bench: {name} exited: {process.stderr.read().decode()[-2000:] if process.stderr else ''}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()
    sys.exit(f"bench: {name} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def peak_rss_mib(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    values = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if line.startswith("Vm")}
    return values.get("VmRSS", 0) / 1024, values.get("VmHWM", 0) / 1024


def measure(port: int, headers: dict[str, str], duration: float) -> dict[str, Result]:
    plain = json.dumps(BODY).encode()
    streaming = json.dumps({**BODY, "stream": True}).encode()
    path = "/v1/chat/completions"
    raw = build_request("127.0.0.1", port, path, plain, headers)
    raw_stream = build_request("127.0.0.1", port, path, streaming, headers)
    results = {}
    asyncio.run(run_load("127.0.0.1", port, raw, 4, 1.0))  # warm up connections, caches, pools
    results["c1"] = asyncio.run(run_load("127.0.0.1", port, raw, 1, duration))
    results["c32"] = asyncio.run(run_load("127.0.0.1", port, raw, 32, duration))
    results["stream32"] = asyncio.run(run_load("127.0.0.1", port, raw_stream, 32, duration))
    return results


def report(name: str, results: dict[str, Result]) -> None:
    c1, c32, s32 = results["c1"], results["c32"], results["stream32"]
    print(f"  {name:<22} c=1: {c1.rps:8.0f} req/s  p50 {c1.p50:7.2f} ms  p99 {c1.p99:7.2f} ms  errors {c1.errors}")
    print(f"  {'':<22} c=32: {c32.rps:7.0f} req/s  p50 {c32.p50:7.2f} ms  p99 {c32.p99:7.2f} ms  errors {c32.errors}")
    print(
        f"  {'':<22} stream c=32: {s32.chunks_per_s:8.0f} chunks/s  TTFT p50 {s32.ttft_p50:7.2f} ms"
        f"  {s32.rps:6.0f} streams/s  errors {s32.errors}"
    )
    bad = {k: r.statuses for k, r in results.items() if r.errors}
    if bad:
        print(f"  {'':<22} statuses: {bad}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--servers", default="uvicorn,daphne", help="comma-separated: uvicorn, daphne")
    parser.add_argument("--chunks", type=int, default=50, help="content chunks per upstream stream")
    args = parser.parse_args()

    print("Preparing the bench database...", flush=True)
    db_url, secret_key = prepare_database()
    upstream_port = free_port()
    upstream = start(
        [sys.executable, str(ROOT / "bench" / "fast_upstream.py"), str(upstream_port), str(args.chunks)],
        dict(os.environ),
        upstream_port,
        "upstream",
    )
    try:
        api_key = seed(f"http://127.0.0.1:{upstream_port}/v1")
        print(
            f"Direct to the fast upstream (CPU shared with the load generator; {args.duration:.0f}s each)", flush=True
        )
        direct = measure(upstream_port, {}, args.duration)
        report("direct", direct)
        for server in [s.strip() for s in args.servers.split(",") if s.strip()]:
            port = free_port()
            env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": secret_key, "DEBUG": "0", "LOG_LEVEL": "WARNING"}
            if server == "uvicorn":
                command = [sys.executable, "-m", "uvicorn", "chatsite.asgi:application", "--host", "127.0.0.1",
                           "--port", str(port), "--no-access-log", "--lifespan", "on",
                           "--log-level", "warning"]  # fmt: skip
            else:
                command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0",
                           "chatsite.asgi:application"]  # fmt: skip
            gateway = start(command, env, port, server)
            try:
                _, idle_hwm = peak_rss_mib(gateway.pid)
                results = measure(port, {"Authorization": f"Bearer {api_key}"}, args.duration)
                rss, hwm = peak_rss_mib(gateway.pid)
            finally:
                stop(gateway)
            print(f"Through the gateway served by {server}", flush=True)
            report(f"gateway ({server})", results)
            print(f"  {'':<22} memory: {idle_hwm:.0f} MiB at start, {rss:.0f} MiB after load, peak {hwm:.0f} MiB")
            c1, c32, s32 = results["c1"], results["c32"], results["stream32"]
            chunk_ratio = s32.chunks_per_s / direct["stream32"].chunks_per_s
            print(
                f"  {'':<22} ratios gateway/direct: c=1 req/s {c1.rps / direct['c1'].rps:.2f}, "
                f"c=32 req/s {c32.rps / direct['c32'].rps:.2f}, chunks/s {chunk_ratio:.2f}; "
                f"added p50 latency at c=1: {c1.p50 - direct['c1'].p50:+.2f} ms; "
                f"TTFT {s32.ttft_p50 / direct['stream32'].ttft_p50:.2f}x"
            )
    finally:
        stop(upstream)
        from django.db import connections

        connections.close_all()


if __name__ == "__main__":
    main()
