"""The response cache's price and gain: a cache hit beside a plain request, in one run.

    .venv/bin/python bench/cache.py [--rounds 3] [--requests 300] [--concurrency 8]

Everything runs on 127.0.0.1 and stops by itself: the fast upstream (bench/fast_upstream.py) and our
gateway as `make run` serves it (one worker), on a fresh bench database. Two models on the same
upstream: `bench/plain` (no cache) and `bench/cached` (`models cache --ttl 3600`), asked the same
request over and over, so every request to the cached one but the first is a hit (no upstream call).
Each round measures both in turn, interleaved: latency at concurrency 1 (p50, p99) and CPU per request
of our server and its PostgreSQL (the upstream's own CPU is left out) at `--concurrency`. The table
gives medians over the rounds and the hit's ratio to the plain request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import Result, build_request, run_requests  # noqa: E402
from bench.side_by_side import Server, launch, prepare_database, start_ours  # noqa: E402
from tests.live_server import free_port  # noqa: E402

PLAIN, CACHED = "bench/plain", "bench/cached"
PATH = "/v1/chat/completions"


def seed(live: str) -> str:
    """The two models; returns a key."""
    from django.db import connections

    from accounts.keys import create_key
    from accounts.models import User
    from catalogue.models import LanguageModel, Provider

    user = User.objects.create_user("bench", password="a-long-and-unusual-password")
    up = Provider.objects.create(name="live", base_url=live)
    for public_id, ttl in ((PLAIN, 0), (CACHED, 3600)):
        LanguageModel.objects.create(
            public_id=public_id, provider=up, upstream_model="fast-model", max_output_tokens=4096, cache_ttl_seconds=ttl
        )
    _key, secret = create_key(user, "bench")
    connections.close_all()
    return secret


def run(server: Server, model: str, concurrency: int, total: int) -> tuple[Result, float]:
    """The requests' result, and the server's CPU milliseconds per request meanwhile."""
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 64}
    raw = build_request("127.0.0.1", server.port, PATH, json.dumps(body).encode(), server.headers)
    before = server.cpu()
    result = asyncio.run(run_requests("127.0.0.1", server.port, raw, concurrency, total))
    return result, (server.cpu() - before) * 1000 / max(1, result.requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    print("Preparing the bench database...", flush=True)
    db_url, secret_key = prepare_database()
    live_port = free_port()
    live = Server("fast upstream", live_port, {})
    servers: list[Server] = []
    try:
        launch(live, [sys.executable, str(ROOT / "bench" / "fast_upstream.py"), str(live_port), "20"],
               dict(os.environ), "/healthz")  # fmt: skip
        servers.append(live)
        ours = start_ours(None, db_url, secret_key, seed(f"http://127.0.0.1:{live_port}/v1"))
        servers.append(ours)
        for model in (PLAIN, CACHED):
            run(ours, model, 4, 50)  # warm-up; fills the cache
        figures: dict[str, dict[str, list[float]]] = {PLAIN: {}, CACHED: {}}
        statuses: dict[str, dict[int, int]] = {PLAIN: {}, CACHED: {}}
        for index in range(args.rounds):
            print(f"Round {index + 1} of {args.rounds}...", flush=True)
            for model in (PLAIN, CACHED):
                c1, _cpu = run(ours, model, 1, args.requests)
                cn, cpu = run(ours, model, args.concurrency, args.requests)
                for name, value in (("p50", c1.p50), ("p99", c1.p99), ("rps", cn.rps), ("cpu", cpu)):
                    figures[model].setdefault(name, []).append(value)
                for result in (c1, cn):
                    for status, count in result.statuses.items():
                        statuses[model][status] = statuses[model].get(status, 0) + count
        print(f"\nOne gateway worker; {args.requests} requests per measure; medians of {args.rounds} rounds\n")
        header = (
            f"| {'request':<16} | p50 c=1 ms | p99 c=1 ms | req/s c={args.concurrency} "
            f"| CPU ms/request (server + PostgreSQL) | answers |"
        )
        print(header)
        print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
        for model, label in ((PLAIN, "plain"), (CACHED, "cache hit")):
            cells = []
            for name, digits in (("p50", 2), ("p99", 2), ("rps", 0), ("cpu", 2)):
                value = statistics.median(figures[model][name])
                ratio = value / statistics.median(figures[PLAIN][name])
                cells.append(f"{value:.{digits}f}" + ("" if model == PLAIN else f" ({ratio:.2f}×)"))
            answers = ", ".join(f"{count} × {status}" for status, count in sorted(statuses[model].items()))
            print(f"| {label:<16} | " + " | ".join(cells) + f" | {answers} |")
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    main()
