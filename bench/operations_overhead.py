"""What operations' hooks add to the CPU of one /v1 request, with metrics, traces or JSON logs on or off.

    .venv/bin/python bench/operations_overhead.py [--requests 20000] [--rounds 5]

Serves requests through the observed ASGI app (gateway.asgi wraps /v1 with it) to an app that does what a
request does around the hooks: an upstream attempt begins and ends (gateway.routing), the call settles
with its ledger row (gateway.serving.base), the ledger takes the row and writes it (usage.ledger's watchers),
then the answer goes out. Each mode runs in a process of its own (the settings read the environment once)
with the same work but the hooks; the figure is CPU per request, median of the rounds. Compare the
differences with the whole site's CPU per request (bench/side_by_side.py), about 2 ms on this machine.
The upstream and the database are left out: they are the same in every mode.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

MODES: dict[str, dict[str, str]] = {
    "all off": {},
    "metrics on": {"METRICS_TOKEN": "bench-scrape-token-0123456789"},
    "metrics and JSON logs on": {"METRICS_TOKEN": "bench-scrape-token-0123456789", "LOG_FORMAT": "json"},
}
OFF = ("METRICS_TOKEN", "METRICS_ALLOWED_ADDRESSES", "OTEL_EXPORTER_OTLP_ENDPOINT", "LOG_FORMAT")


def measure(requests: int, rounds: int) -> list[float]:
    """CPU microseconds per request, one figure per round (in this process, as configured)."""
    import django

    django.setup()
    from accounts.models import User
    from catalogue.models import Deployment, LanguageModel, Provider
    from operations import observe
    from usage import ledger
    from usage.models import UsageRecord
    from usage.tokens import Usage

    provider = Provider(pk=1, name="fake", base_url="http://127.0.0.1:9/v1")
    model = LanguageModel(pk=1, public_id="bench/fast-model", provider=provider, upstream_model="fake")
    deployment = Deployment(pk=1, model=model, provider=provider, upstream_model="fake")
    user = User(pk=1, username="bench")
    usage = Usage(20, 10)
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "client": ("127.0.0.1", 1)}

    async def request(scope: dict[str, Any], receive: Any, send: Any) -> None:
        watch = observe.attempt(model, deployment)
        observe.ended(watch)
        fields = dict(
            user=user, api_key=None, group_id=None, model=model, model_public_id=model.public_id,
            deployment=deployment, attempts=1, source="api", prompt_tokens=20, completion_tokens=10,
            usage_estimated=False, cost=Decimal("0.00004"), latency_ms=3, ttft_ms=None, status=200, error_code="",
            stream=False,
        )  # fmt: skip
        UsageRecord(**fields)  # the ledger's row, as Call.finish queues it whatever the mode
        for watch_backlog in ledger.backlog_watchers:
            watch_backlog(1)
        observe.settled(fields, usage, ("stop",))
        for watch_backlog in ledger.backlog_watchers:
            watch_backlog(0)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"Content-Type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})

    app = observe.observed(request)

    async def send(message: dict[str, Any]) -> None:
        pass

    async def run() -> list[float]:
        for _ in range(1000):  # warm-up: label children, caches
            await app(scope, None, send)
        figures = []
        for _ in range(rounds):
            started = time.process_time()
            for _ in range(requests):
                await app(scope, None, send)
            figures.append((time.process_time() - started) / requests * 1e6)
        return figures

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(" ".join(f"{f:.2f}" for f in measure(args.requests, args.rounds)))
        return
    results = {}
    for mode, env in MODES.items():
        with tempfile.TemporaryDirectory(prefix="bench-metrics-") as folder:
            child_env = {k: v for k, v in os.environ.items() if k not in OFF}
            child_env.update(env, PROMETHEUS_MULTIPROC_DIR=folder, DJANGO_SETTINGS_MODULE="chatsite.settings",
                             LOG_LEVEL="WARNING")  # fmt: skip
            command = [sys.executable, __file__, "--child", f"--requests={args.requests}", f"--rounds={args.rounds}"]
            # JSON request lines go to stderr, as a server's would go to its log.
            done = subprocess.run(command, cwd=ROOT, env=child_env, capture_output=True, text=True, check=True)
            results[mode] = [float(f) for f in done.stdout.split()]
    base = statistics.median(results["all off"])
    print(f"CPU per request around the hooks, {args.requests} requests x {args.rounds} rounds: median (min-max)")
    for mode, figures in results.items():
        median = statistics.median(figures)
        added = f", +{median - base:.1f} us" if mode != "all off" else ""
        print(f"  {mode:<26} {median:6.1f} us ({min(figures):.1f}-{max(figures):.1f}){added}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
