"""Our gateway beside LiteLLM's proxy, in one run, against the same fast fake upstream (`make bench`).

    .venv/bin/python bench/side_by_side.py [--rounds 3] [--servers uvicorn,daphne] [--soak-minutes 10]

Everything runs on 127.0.0.1 and stops by itself:
- the fast upstream (bench/fast_upstream.py, 20 chunks per stream), also measured bare;
- our gateway as `make run` serves it (`python -m chatsite.launcher`: migrations, the admin account,
  then the server SERVER names), on a fresh database `chatsite_bench` of the embedded PostgreSQL;
- LiteLLM's proxy, a pinned version installed into var/bench/ on first use (bench/litellm_proxy.py),
  one worker, no database.

Each round drives every server in turn with the same requests: a latency run at concurrency 1,
then 600 plain and 600 streamed requests at concurrency 32, reading the CPU time of each server's
processes before and after (ours including every PostgreSQL process: the database work is part of
our cost). The table gives the median of the rounds and their spread (min-max), for ours, LiteLLM's
and the ratio per round. The machine is shared: compare only figures of one run.

Then the soak: our gateway alone under plain and streamed load at concurrency 32 for
`--soak-minutes` (a short smoke run by default), printing its RSS over time after warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench import litellm_proxy, procs  # noqa: E402
from bench.loadgen import Result, build_request, run_load, run_requests  # noqa: E402
from tests.live_server import database_url, free_port  # noqa: E402

MODEL = "bench/fast-model"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello in one short sentence."}], "max_tokens": 64}
PATH = "/v1/chat/completions"
PGDATA = ROOT / "var" / "pgdata"


def prepare_database() -> tuple[str, str]:
    """A fresh bench database in the embedded PostgreSQL, migrated; its URL and our SECRET_KEY."""
    from chatsite.embedded_db import ensure_embedded_postgres

    if os.environ.get("DATABASE_URL"):
        sys.exit("bench: unset DATABASE_URL; the benchmark makes its own database in the embedded PostgreSQL")
    import psycopg

    uri = ensure_embedded_postgres(PGDATA)
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
    """A user, a key, a provider at the fake upstream and its model; returns the key."""
    from django.db import connections

    from accounts.keys import create_key
    from accounts.models import User
    from catalogue.models import LanguageModel, Provider

    user = User.objects.create_user("bench", password="a-long-and-unusual-password")
    provider = Provider.objects.create(name="bench-upstream", base_url=upstream_url)
    LanguageModel.objects.create(
        public_id=MODEL, provider=provider, upstream_model="fast-model", context_length=8192, max_output_tokens=4096
    )
    _key, secret = create_key(user, "bench")
    connections.close_all()  # no connection of ours counts in PostgreSQL's CPU
    return secret


@dataclass
class Server:
    name: str
    port: int
    headers: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    extra_roots: Callable[[], list[int]] = list  # processes whose CPU counts as this server's too

    def roots(self) -> list[int]:
        own = [self.process.pid] if self.process is not None else []
        return own + self.extra_roots()

    def cpu(self) -> float:
        return procs.cpu_seconds(self.roots())

    def own_cpu(self) -> float:
        return procs.cpu_seconds([self.process.pid]) if self.process is not None else 0.0

    def rss(self) -> float:
        return procs.rss_mib([self.process.pid]) if self.process is not None else 0.0

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def launch(
    server: Server, command: list[str], env: dict[str, str], ready_path: str, timeout: float = 240, cwd: Path = ROOT
) -> None:
    """Start a server and wait until `ready_path` answers 200 (its log is printed if it fails)."""
    log = Path(tempfile.mkstemp(prefix=f"bench-{server.name.replace(' ', '-')}-", suffix=".log")[1])
    server.log = log
    with log.open("wb") as out:
        server.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            sys.exit(f"bench: {server.name} exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{server.port}{ready_path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    sys.exit(f"bench: {server.name} did not answer within {timeout:.0f}s:\n{log.read_text(errors='replace')[-3000:]}")


# Printed by a checkout's own Django: every table its models write and the columns they know.
_COLUMNS = """
import json, django
django.setup()
from django.apps import apps
known = {}
for model in apps.get_models(include_auto_created=True):
    meta = model._meta
    known.setdefault(meta.db_table, []).extend(f.column for f in meta.local_concrete_fields)
print(json.dumps(known))
"""


def open_to(other: Path, db_url: str) -> list[str]:
    """Let an earlier checkout's site write to the bench database, migrated by this one.

    Columns added since have no default in PostgreSQL (Django fills them in), so the earlier code's
    inserts would fail on them: in the bench database only, those it does not know accept NULL.
    Returns them, "table.column".
    """
    import psycopg

    env = {**os.environ, "DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "chatsite.settings"}
    printed = subprocess.run([sys.executable, "-c", _COLUMNS], cwd=other, env=env, capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
    known: dict[str, list[str]] = json.loads(printed.strip().splitlines()[-1])
    relaxed = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND is_nullable = 'NO' AND column_default IS NULL"
        ).fetchall()
        for table, column in rows:
            if table in known and column not in known[table]:
                conn.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" DROP NOT NULL')
                relaxed.append(f"{table}.{column}")
    return sorted(relaxed)


def start_ours(
    server_name: str | None,
    db_url: str,
    secret_key: str,
    api_key: str,
    extra_env: dict[str, str] | None = None,
    root: Path = ROOT,
    label: str = "",
) -> Server:
    """Our site as `make run` serves it, from this checkout or another one (`root`, for before/after runs)."""
    port = free_port()
    label = label or f"ours ({server_name or 'make run default'})"
    server = Server(label, port, {"Authorization": f"Bearer {api_key}"}, extra_roots=postgres_roots)
    env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": secret_key, "HOST": "127.0.0.1", "PORT": str(port),
           "LOCAL_MODEL": "0", "ADMIN_PASSWORD": "bench-admin-password-not-used",
           # The gateway alone: no embedding server, no ingestion worker (their memory is not the gateway's).
           "LOCAL_EMBEDDING": "0", "KNOWLEDGE_WORKER": "0"}  # fmt: skip
    env.pop("SERVER", None)
    env.update(extra_env or {})
    if server_name:
        env["SERVER"] = server_name
    launch(server, [sys.executable, "-m", "chatsite.launcher"], env, "/healthz", cwd=root)
    return server


def start_litellm(upstream_port: int, workdir: Path) -> Server:
    executable = litellm_proxy.ensure_installed(ROOT)
    config, logging_config = litellm_proxy.write_config(workdir, MODEL, f"http://127.0.0.1:{upstream_port}/v1")
    port = free_port()
    server = Server(f"LiteLLM {litellm_proxy.VERSION}", port, {"Authorization": f"Bearer {litellm_proxy.MASTER_KEY}"})
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(litellm_proxy.environment())
    launch(server, litellm_proxy.command(executable, config, logging_config, port), env, "/health/liveliness")
    return server


def postgres_roots() -> list[int]:
    return [procs.postmaster_pid(PGDATA)]


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Round:
    p50_c1: float = 0.0
    cpu_plain_ms: float = 0.0
    cpu_stream_ms: float = 0.0
    own_cpu_plain_ms: float = 0.0
    own_cpu_stream_ms: float = 0.0
    rps_c32: float = 0.0
    streams_per_s: float = 0.0
    rss_mib: float = 0.0
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)


def _requests(server: Server, stream: bool) -> bytes:
    body = json.dumps({**BODY, "stream": True} if stream else BODY).encode()
    return build_request("127.0.0.1", server.port, PATH, body, server.headers)


def _run(server: Server, stream: bool, concurrency: int, total: int) -> Result:
    return asyncio.run(run_requests("127.0.0.1", server.port, _requests(server, stream), concurrency, total))


def warm_up(server: Server) -> None:
    _run(server, False, 8, 200)
    _run(server, True, 8, 100)


def measure(server: Server, args: argparse.Namespace, latency_only: bool = False) -> Round:
    result = Round()
    c1 = _run(server, False, 1, args.latency_requests)
    result.p50_c1 = c1.p50
    result.statuses["c1"] = c1.statuses
    if latency_only:
        return result
    for stream in (False, True):
        before, own_before = server.cpu(), server.own_cpu()
        run = _run(server, stream, args.concurrency, args.requests)
        spent, own = server.cpu() - before, server.own_cpu() - own_before
        if stream:
            result.cpu_stream_ms, result.own_cpu_stream_ms = spent / run.requests * 1000, own / run.requests * 1000
            result.streams_per_s = run.rps
            result.statuses["stream"] = run.statuses
        else:
            result.cpu_plain_ms, result.own_cpu_plain_ms = spent / run.requests * 1000, own / run.requests * 1000
            result.rps_c32 = run.rps
            result.statuses["plain"] = run.statuses
    result.rss_mib = server.rss()
    return result


# ---------------------------------------------------------------------------------------------
# Reporting


def spread(values: list[float], digits: int = 1) -> str:
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def fraction(values: list[float]) -> str:
    """Ours as a fraction of LiteLLM's (1/N: N times less), median and spread of the rounds."""
    median = statistics.median(values)
    text = f"1/{median:.1f}"
    return text if len(values) == 1 else f"{text} (1/{min(values):.1f}–1/{max(values):.1f})"


def times(values: list[float]) -> str:
    median = statistics.median(values)
    return f"{median:.1f}×" if len(values) == 1 else f"{median:.1f}× ({min(values):.1f}–{max(values):.1f}×)"


def table(ours: dict[str, list[Round]], litellm: list[Round] | None, bare: list[Round]) -> str:
    names = list(ours)
    header = ["", *names]
    if litellm is not None:
        header += [f"LiteLLM {litellm_proxy.VERSION}", *(f"ratio, {n}" for n in names)] if len(names) > 1 else [
            f"LiteLLM {litellm_proxy.VERSION}", "ratio"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]

    def row(label: str, pick: Callable[[Round, int], float], ratio: Callable[[list[float]], str], lower: bool) -> None:
        cells = [label]
        for name in names:
            cells.append(spread([pick(r, i) for i, r in enumerate(ours[name])]))
        if litellm is not None:
            cells.append(spread([pick(r, i) for i, r in enumerate(litellm)]))
            for name in names:
                per_round = [
                    (pick(theirs, i) / pick(mine, i)) if lower else (pick(mine, i) / pick(theirs, i))
                    for i, (mine, theirs) in enumerate(zip(ours[name], litellm, strict=True))
                    if pick(mine, i) > 0 and pick(theirs, i) > 0
                ]
                cells.append(ratio(per_round) if per_round else "n/a")
        lines.append("| " + " | ".join(cells) + " |")

    row("CPU per plain request, ms", lambda r, _i: r.cpu_plain_ms, fraction, True)
    row("CPU per streamed request (20 chunks), ms", lambda r, _i: r.cpu_stream_ms, fraction, True)
    row("requests/s at c=32, plain", lambda r, _i: r.rps_c32, times, False)
    row("streams/s at c=32", lambda r, _i: r.streams_per_s, times, False)
    row("added p50 latency at c=1, ms", lambda r, i: max(r.p50_c1 - bare[i].p50_c1, 0.01), fraction, True)
    row("memory after load (RSS), MiB", lambda r, _i: r.rss_mib, fraction, True)
    return "\n".join(lines)


def breakdown(name: str, rounds: list[Round]) -> str:
    server_plain = [r.own_cpu_plain_ms for r in rounds]
    server_stream = [r.own_cpu_stream_ms for r in rounds]
    pg_plain = [r.cpu_plain_ms - r.own_cpu_plain_ms for r in rounds]
    pg_stream = [r.cpu_stream_ms - r.own_cpu_stream_ms for r in rounds]
    return (
        f"{name}: CPU per plain request {spread(server_plain, 2)} ms in the server + {spread(pg_plain, 2)} ms in "
        f"PostgreSQL; per streamed {spread(server_stream, 2)} + {spread(pg_stream, 2)} ms"
    )


def problems(name: str, rounds: list[Round]) -> list[str]:
    found = []
    for index, r in enumerate(rounds, 1):
        for phase, statuses in r.statuses.items():
            bad = {status: count for status, count in statuses.items() if status != 200}
            if bad:
                found.append(f"{name}, round {index}, {phase}: answers other than 200: {bad}")
    return found


# ---------------------------------------------------------------------------------------------
# Soak


def soak(server: Server, args: argparse.Namespace) -> None:
    duration = args.soak_minutes * 60
    if duration <= 0:
        return
    samples = 20
    interval = max(duration / samples, 1.5)
    warm = max(1, samples // 10)
    plain, streamed = _requests(server, False), _requests(server, True)
    streams = max(1, args.concurrency // 4)
    print(f"\nSoak: {server.name}, plain and streamed at concurrency {args.concurrency} for {args.soak_minutes:g} min")
    curve: list[tuple[float, float, int]] = []
    started, done = time.monotonic(), 0

    async def slice_() -> int:
        results = await asyncio.gather(
            run_load("127.0.0.1", server.port, plain, args.concurrency - streams, interval),
            run_load("127.0.0.1", server.port, streamed, streams, interval),
        )
        return sum(r.requests for r in results) - sum(r.errors for r in results)

    while time.monotonic() - started < duration:
        done += asyncio.run(slice_())
        curve.append((time.monotonic() - started, server.rss(), done))
    base = curve[min(warm, len(curve) - 1)][1]
    print("   t (s)   RSS (MiB)   requests")
    for index, (t, rss, count) in enumerate(curve):
        mark = "  <- end of warm-up" if index == min(warm, len(curve) - 1) else ""
        print(f"  {t:6.0f}   {rss:9.1f}   {count:8d}{mark}")
    last = curve[-1][1]
    peak = max(rss for _, rss, _ in curve[min(warm, len(curve) - 1) :])
    print(f"  after warm-up: {base:.1f} MiB -> {last:.1f} MiB at the end ({(last - base) / base * 100:+.1f} %), "
          f"peak {peak:.1f} MiB ({(peak - base) / base * 100:+.1f} %)")  # fmt: skip


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="measurements of every server, interleaved")
    parser.add_argument("--requests", type=int, default=600, help="plain and streamed requests per round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-requests", type=int, default=300, help="requests of the c=1 run per round")
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per upstream stream")
    parser.add_argument("--servers", default="", help="ours under these servers (comma-separated; default: make run's)")
    parser.add_argument("--no-litellm", action="store_true", help="ours only (quicker, for profiling)")
    parser.add_argument("--soak-minutes", type=float, default=0.5, help="0 skips the soak")
    parser.add_argument("--compare-checkout", metavar="PATH", help="also measure the site of another checkout (a "
                        "worktree of an earlier commit, same migrations) in each round, side by side")  # fmt: skip
    args = parser.parse_args()

    print("Preparing the bench database...", flush=True)
    db_url, secret_key = prepare_database()
    upstream_port = free_port()
    upstream = Server("bare upstream", upstream_port, {})
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    servers: list[Server] = [upstream]
    try:
        launch(upstream, [sys.executable, str(ROOT / "bench" / "fast_upstream.py"), str(upstream_port),
                          str(args.chunks)], dict(os.environ), "/healthz")  # fmt: skip
        api_key = seed(f"http://127.0.0.1:{upstream_port}/v1")
        names = [name.strip() for name in args.servers.split(",") if name.strip()] or [None]
        ours = [start_ours(name, db_url, secret_key, api_key) for name in names]
        if args.compare_checkout:
            other = Path(args.compare_checkout).resolve()
            commit = subprocess.run(["git", "-C", str(other), "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True, check=True).stdout.strip()  # fmt: skip
            relaxed = open_to(other, db_url)
            print(f"Columns the checkout does not know, made nullable for it: {', '.join(relaxed) or 'none'}")
            ours.append(start_ours(None, db_url, secret_key, api_key, root=other, label=f"checkout {commit}"))
        servers += ours
        litellm = None if args.no_litellm else start_litellm(upstream_port, workdir)
        if litellm is not None:
            servers.append(litellm)
        measured = [s for s in servers if s is not upstream]
        print("Warming up: " + ", ".join(s.name for s in measured), flush=True)
        for server in measured:
            warm_up(server)
        results: dict[str, list[Round]] = {s.name: [] for s in servers}
        for index in range(args.rounds):
            print(f"Round {index + 1} of {args.rounds}...", flush=True)
            results[upstream.name].append(measure(upstream, args, latency_only=True))
            for server in measured:
                results[server.name].append(measure(server, args))
        print(
            f"\n{args.requests} plain and {args.requests} streamed requests at concurrency {args.concurrency}, "
            f"{args.latency_requests} at concurrency 1, per round; {args.rounds} rounds: median (min–max)"
        )
        print(f"bare upstream p50 at c=1: {spread([r.p50_c1 for r in results[upstream.name]], 2)} ms\n")
        print(
            table(
                {s.name: results[s.name] for s in ours},
                results[litellm.name] if litellm is not None else None,
                results[upstream.name],
            )
        )
        print()
        for server in ours:
            print(breakdown(server.name, results[server.name]))
        for server in measured:
            for line in problems(server.name, results[server.name]):
                print("WARNING: " + line)
        if litellm is not None:
            litellm.stop()
            servers.remove(litellm)
        soak(ours[0], args)
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    main()
