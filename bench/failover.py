"""Failover's cost: a model with one of two deployments dead beside one with both healthy, in one run.

    .venv/bin/python bench/failover.py [--rounds 3] [--requests 600] [--concurrency 32]

Everything runs on 127.0.0.1 and stops by itself: the fast upstream (bench/fast_upstream.py), a
"broken" upstream answering every request with a 500, and our gateway as `make run` serves it (one
worker, health kept in process), on a fresh bench database. Models, each served by two deployments of
equal priority and weight:

- `bench/healthy`: both deployments on the fast upstream (the baseline);
- `bench/one-refusing`: one deployment on a port where nothing listens (connection refused);
- `bench/one-failing`: one deployment on the broken upstream (every answer a 500).

Each round measures every model in turn, interleaved: 300 requests at concurrency 1 (p50, p99) and
`--requests` at concurrency 32 (requests/s, p50, p99), and counts answers that are not 200 (there
should be none: every failure is retried on the healthy deployment before the first byte). Then the
price of one failover: a request to a model whose first-priority deployment refuses and has never
failed before (its breaker closed, so the request really tries it), against one request to a model
as new (its first request too) whose deployments are healthy. The table gives medians over the
rounds and the ratio to the healthy model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.loadgen import Result, build_request, run_requests  # noqa: E402
from bench.side_by_side import Server, launch, prepare_database, start_ours  # noqa: E402
from tests.live_server import free_port  # noqa: E402

HEALTHY, REFUSING, FAILING = "bench/healthy", "bench/one-refusing", "bench/one-failing"
SCENARIOS = {HEALTHY: "both healthy", REFUSING: "one refusing connections", FAILING: "one answering 500"}
PATH = "/v1/chat/completions"

BROKEN_UPSTREAM = """
import asyncio, sys

async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            length = 0
            for line in head.split(b"\\r\\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if head.startswith(b"GET /healthz"):
                body = b"ok"
                writer.write(b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\n" + body)
            else:
                body = b'{"error":{"message":"broken","type":"server_error"}}'
                writer.write(b"HTTP/1.1 500 Internal Server Error\\r\\ncontent-type: application/json\\r\\n"
                             b"content-length: %d\\r\\n\\r\\n" % len(body) + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


def seed(live: str, refusing: str, broken: str, fresh: int) -> str:
    """The models above and single-use pairs for the first-request figure; returns a key."""
    from django.db import connections

    from accounts.keys import create_key
    from accounts.models import User
    from catalogue.models import Deployment, LanguageModel, Provider

    user = User.objects.create_user("bench", password="a-long-and-unusual-password")
    up = Provider.objects.create(name="live", base_url=live)
    up2 = Provider.objects.create(name="live-too", base_url=live)
    dead = Provider.objects.create(name="refusing", base_url=refusing)
    bad = Provider.objects.create(name="broken", base_url=broken)

    def model(public_id: str, first: Provider, second: Provider, second_priority: int = 0) -> None:
        created = LanguageModel.objects.create(
            public_id=public_id, provider=first, upstream_model="fast-model", max_output_tokens=4096
        )
        Deployment.objects.create(model=created, provider=second, upstream_model="fast-model", priority=second_priority)

    model(HEALTHY, up, up2)
    model(REFUSING, dead, up)
    model(FAILING, bad, up)
    for index in range(fresh):
        model(f"bench/fresh-{index}", dead, up, second_priority=1)
        model(f"bench/fresh-healthy-{index}", up, up2, second_priority=1)
    _key, secret = create_key(user, "bench")
    connections.close_all()
    return secret


def request(server: Server, model: str) -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 64}
    return build_request("127.0.0.1", server.port, PATH, json.dumps(body).encode(), server.headers)


def run(server: Server, model: str, concurrency: int, total: int) -> Result:
    return asyncio.run(run_requests("127.0.0.1", server.port, request(server, model), concurrency, total))


def one_request_ms(server: Server, model: str) -> float:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 64}
    started = time.perf_counter()
    answer = httpx.post(f"http://127.0.0.1:{server.port}{PATH}", json=body, headers=server.headers, timeout=30)
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        sys.exit(f"bench: {model} answered {answer.status_code}: {answer.text[:300]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=600, help="requests at concurrency --concurrency per round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-requests", type=int, default=300)
    args = parser.parse_args()

    print("Preparing the bench database...", flush=True)
    db_url, secret_key = prepare_database()
    live_port, broken_port, refused_port = free_port(), free_port(), free_port()
    live = Server("fast upstream", live_port, {})
    broken = Server("broken upstream", broken_port, {})
    servers: list[Server] = []
    try:
        launch(live, [sys.executable, str(ROOT / "bench" / "fast_upstream.py"), str(live_port), "20"],
               dict(os.environ), "/healthz")  # fmt: skip
        servers.append(live)
        launch(broken, [sys.executable, "-c", BROKEN_UPSTREAM, str(broken_port)], dict(os.environ), "/healthz")
        servers.append(broken)
        api_key = seed(
            f"http://127.0.0.1:{live_port}/v1",
            f"http://127.0.0.1:{refused_port}/v1",
            f"http://127.0.0.1:{broken_port}/v1",
            fresh=args.rounds,
        )
        ours = start_ours(None, db_url, secret_key, api_key)
        servers.append(ours)
        for model in SCENARIOS:
            run(ours, model, 8, 100)  # warm-up; trips the dead deployments' breakers as real traffic would
        figures: dict[str, dict[str, list[float]]] = {m: {} for m in SCENARIOS}
        statuses: dict[str, dict[int, int]] = {m: {} for m in SCENARIOS}
        first_failover, first_healthy = [], []
        for index in range(args.rounds):
            print(f"Round {index + 1} of {args.rounds}...", flush=True)
            for model in SCENARIOS:
                c1 = run(ours, model, 1, args.latency_requests)
                cn = run(ours, model, args.concurrency, args.requests)
                for name, value in (("p50 c=1", c1.p50), ("p99 c=1", c1.p99), ("rps", cn.rps),
                                    ("p50 c=N", cn.p50), ("p99 c=N", cn.p99)):  # fmt: skip
                    figures[model].setdefault(name, []).append(value)
                for result in (c1, cn):
                    for status, count in result.statuses.items():
                        statuses[model][status] = statuses[model].get(status, 0) + count
            first_healthy.append(one_request_ms(ours, f"bench/fresh-healthy-{index}"))
            first_failover.append(one_request_ms(ours, f"bench/fresh-{index}"))

        def med(model: str, name: str) -> float:
            return statistics.median(figures[model][name])

        print(
            f"\nOne gateway worker; per round {args.latency_requests} requests at c=1 and {args.requests} at "
            f"c={args.concurrency} per model; medians of {args.rounds} rounds (ratio to both healthy)\n"
        )
        header = f"| {'two deployments':<26} | req/s c={args.concurrency} | p50 c=1 ms | p99 c=1 ms | p50 c={args.concurrency} ms | p99 c={args.concurrency} ms | answers |"  # noqa: E501
        print(header)
        print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
        base = {name: med(HEALTHY, name) for name in figures[HEALTHY]}
        for model, label in SCENARIOS.items():
            cells = []
            for name in ("rps", "p50 c=1", "p99 c=1", "p50 c=N", "p99 c=N"):
                value = med(model, name)
                cells.append(f"{value:.0f}" if model == HEALTHY else f"{value:.0f} ({value / base[name]:.2f}×)")
            answers = ", ".join(f"{count} × {status}" for status, count in sorted(statuses[model].items()))
            print(f"| {label:<26} | " + " | ".join(cells) + f" | {answers} |")
        added = [f - h for f, h in zip(first_failover, first_healthy, strict=True)]
        print(
            f"\nA request whose first deployment refuses (breaker still closed): "
            f"{statistics.median(first_failover):.1f} ms against {statistics.median(first_healthy):.1f} ms "
            f"for a model as new whose first deployment is healthy: failover added {statistics.median(added):.1f} ms "
            f"(rounds: {', '.join(f'{a:.1f}' for a in added)})"
        )
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    main()
