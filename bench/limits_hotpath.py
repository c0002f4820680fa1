"""What rate limits cost on the hot path: reserve + settle against a real Redis, and in-process.

    .venv/bin/python bench/limits_hotpath.py [--seconds 3] [--concurrency 32]

Starts redis-server on a free loopback port and the embedded PostgreSQL (database `chatsite_bench_limits`,
recreated), gives a user RPM, TPM and a budget, then runs reserve()+settle() pairs from `concurrency`
coroutines in one event loop, as one worker would. Prints pairs/s and p50/p99 per pair for both stores.
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
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.live_server import database_url, free_port  # noqa: E402


@dataclass(frozen=True)
class Caller:
    user: Any
    api_key: Any = None


def setup_django() -> None:
    from urllib.parse import parse_qs, urlparse

    import psycopg

    from chatsite.embedded_db import ensure_embedded_postgres

    uri = ensure_embedded_postgres(ROOT / "var" / "pgdata")
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS chatsite_bench_limits WITH (FORCE)")
        conn.execute("CREATE DATABASE chatsite_bench_limits")
    parsed = urlparse(uri)
    host = parse_qs(parsed.query)["host"][0]
    os.environ["DATABASE_URL"] = database_url(
        {"USER": parsed.username, "HOST": host, "PORT": "", "NAME": "chatsite_bench_limits"}
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


async def drive(caller: Caller, model: Any, seconds: float, concurrency: int) -> tuple[int, list[float]]:
    from usage import limits

    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            reservation = await limits.reserve(caller, model, 20, 64)
            await limits.settle(reservation, 12, 30, model.cost(12, 30))
            latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if os.environ.get("DATABASE_URL"):
        sys.exit("unset DATABASE_URL; the benchmark makes its own database in the embedded PostgreSQL")
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", tempfile.mkdtemp()],
        stdout=subprocess.DEVNULL,
    )
    try:
        setup_django()
        from django.conf import settings

        from accounts.models import User
        from catalogue.models import LanguageModel, Provider
        from usage import limits
        from usage.models import Limit

        user = User.objects.create_user("bench")
        provider = Provider.objects.create(name="bench", base_url="http://127.0.0.1:9/v1")
        model = LanguageModel.objects.create(
            public_id="bench/m", provider=provider, upstream_model="m", input_price_per_million=Decimal("0.1")
        )
        Limit.objects.create(user=user, requests_per_minute=2 * 10**9, tokens_per_minute=2 * 10**9, budget_usd=10**6)
        time.sleep(0.3)
        for store, url in (("in-process", None), ("redis", f"redis://127.0.0.1:{port}/0")):
            settings.REDIS_URL = url
            limits.forget_local_state()
            count, latencies = asyncio.run(drive(Caller(user), model, args.seconds, args.concurrency))
            latencies.sort()
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            print(
                f"{store:<11} reserve+settle: {count / args.seconds:8.0f} pairs/s at concurrency {args.concurrency}, "
                f"p50 {statistics.median(latencies):.2f} ms, p99 {p99:.2f} ms"
            )
    finally:
        redis.terminate()
        from django.db import connections

        connections.close_all()


if __name__ == "__main__":
    main()
