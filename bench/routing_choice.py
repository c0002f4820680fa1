"""What choosing a deployment costs, routed by priority and by measured latency, side by side.

    .venv/bin/python bench/routing_choice.py [--requests 5000] [--deployments 2,4]

One request's routing work, without the upstream call: `Attempts(model)`, `next()` (the circuits read,
the choice), `succeeded()` (for latency: the time to first byte folded into the shared average) and
`release()`, one request after another in one event loop, as one worker's requests are. For both
stores: the files (no REDIS_URL; a temporary folder) and Redis (redis-server on a free loopback port,
when installed). No database: the model and its deployments are built in memory. Prints the median
and the 99th percentile in microseconds per request, and how the traffic was spread.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.live_server import free_port  # noqa: E402


def build(strategy: str, deployments: int, model_pk: int) -> Any:
    from catalogue.models import Deployment, LanguageModel, Provider

    provider = Provider(pk=1, name="bench", base_url="http://127.0.0.1:9/v1")
    model = LanguageModel(pk=model_pk, public_id=f"bench/{strategy}", provider=provider, routing=strategy)
    model.routes = [  # type: ignore[attr-defined]
        Deployment(pk=model_pk * 100 + i, model=model, provider=provider, upstream_model=f"u{i}")
        for i in range(deployments)
    ]
    return model


async def drive(model: Any, requests: int) -> tuple[list[float], Counter[int]]:
    from gateway import routing

    took: list[float] = []
    spread: Counter[int] = Counter()
    for _ in range(requests):
        started = time.perf_counter()
        attempts = routing.Attempts(model)
        chosen = await attempts.next()
        await attempts.succeeded()
        attempts.release()
        took.append((time.perf_counter() - started) * 1e6)
        spread[chosen.pk % 100] += 1
    return took, spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--deployments", default="2,4", help="comma-separated counts of deployments per model")
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    from django.conf import settings

    from gateway import health

    settings.HEALTH_DIR = Path(folder)
    redis = None
    stores: list[tuple[str, str | None]] = [("files", None)]
    if shutil.which("redis-server"):
        port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.3)
        stores.append(("redis", f"redis://127.0.0.1:{port}/0"))
    try:
        print(f"{'store':<6} {'deployments':>11} {'strategy':<9} {'p50 us':>8} {'p99 us':>8}  traffic")
        model_pk = 1
        for store, url in stores:
            settings.REDIS_URL = url
            for count in (int(n) for n in args.deployments.split(",")):
                for strategy in ("priority", "latency"):
                    health.forget_local_state()
                    model_pk += 1
                    took, spread = asyncio.run(drive(build(strategy, count, model_pk), args.requests))
                    took.sort()
                    p99 = took[int(len(took) * 0.99) - 1]
                    traffic = " ".join(f"{spread[i]}" for i in range(count))
                    print(f"{store:<6} {count:>11} {strategy:<9} {statistics.median(took):8.0f} {p99:8.0f}  {traffic}")
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
