"""What the analytics pages cost at millions of ledger rows, and what building the rollup costs.

    .venv/bin/python bench/analytics.py [--rows 10000000] [--users 500] [--days 90] [--runs 5]

Starts the embedded PostgreSQL (database `chatsite_bench_analytics`, recreated), inserts N ledger rows
with generate_series, foreign key checks off (users in groups, each on a few models, half through a key,
two deployments per model, spread over the last --days days), then prints: the insert's time, the rollup's build
(`catch_up`, the work `manage.py usage rollup` does) and its size, an incremental fold of 10,000 new
rows, and the median server time of the staff page (30 and 90 days), its CSV, and a group manager's
page, in process (Django's test client, the whole middleware stack). The pages read only rollup rows,
so their cost follows days x dimensions, not the ledger's size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.conversation_list import setup_django  # noqa: E402

DATABASE = "chatsite_bench_analytics"
MODELS = 10
CHUNK = 1_000_000

# One ledger row per i: user i*7919 mod users; a model among the user's three; a key on odd rows
# (the API), the chat on even ones; the model's second deployment for one row in ten, slower.
_INSERT = f"""
INSERT INTO usage_usagerecord (user_id, api_key_id, group_id, model_id, model_public_id, deployment_id, attempts,
    source, prompt_tokens, completion_tokens, usage_estimated, cost, latency_ms, ttft_ms, status, error_code,
    stream, created_at)
SELECT u.id, CASE WHEN mod(i, 2) = 1 THEN u.key_id END, u.group_id, m.id, m.public_id,
       CASE WHEN mod(i, 10) = 0 THEN m.slow_id ELSE m.fast_id END, 1,
       CASE WHEN mod(i, 2) = 1 THEN 'api' ELSE 'chat' END, 50 + mod(i, 2000), 10 + mod(i, 700), false,
       (50 + mod(i, 2000)) * 0.000002 + (10 + mod(i, 700)) * 0.000008,
       CASE WHEN mod(i, 10) = 0 THEN 2000 + mod(i, 9000) ELSE 150 + mod(i, 1800) END, 80 + mod(i, 400),
       CASE WHEN mod(i, 97) = 0 THEN 502 WHEN mod(i, 89) = 0 THEN 429 ELSE 200 END, '', mod(i, 3) = 0,
       now() - mod(i, %(days)s * 86400) * interval '1 second'
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
JOIN bench_users u ON u.n = mod(i * 7919, %(users)s)
JOIN bench_models m ON m.n = mod(u.n + mod(i, 3), {MODELS})
"""


def populate_dimensions(users: int) -> None:
    from django.contrib.auth.models import Group
    from django.db import connection

    from accounts import keys
    from accounts.models import User
    from catalogue.models import Deployment, LanguageModel, Provider

    provider = Provider.objects.create(name="bench", base_url="http://127.0.0.1:9/v1")
    groups = [Group.objects.create(name=f"team-{g}") for g in range(max(1, users // 25))]
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_models (n int PRIMARY KEY, id bigint, public_id text, fast_id bigint, "
                       "slow_id bigint)")  # fmt: skip
        cursor.execute("CREATE TABLE bench_users (n int PRIMARY KEY, id bigint, key_id bigint, group_id bigint)")
        for n in range(MODELS):
            model = LanguageModel.objects.create(public_id=f"bench/m-{n}", provider=provider, upstream_model=f"m{n}")
            fast = Deployment.objects.create(model=model, provider=provider, upstream_model=f"m{n}-a")
            slow = Deployment.objects.create(model=model, provider=provider, upstream_model=f"m{n}-b")
            row = [n, model.pk, model.public_id, fast.pk, slow.pk]
            cursor.execute("INSERT INTO bench_models VALUES (%s, %s, %s, %s, %s)", row)
        for n in range(users):
            user = User.objects.create(username=f"user-{n}")
            key, _ = keys.create_key(user, "script")
            group = groups[n % len(groups)]
            user.groups.add(group)
            cursor.execute("INSERT INTO bench_users VALUES (%s, %s, %s, %s)", [n, user.pk, key.pk, group.pk])


def insert_ledger(rows: int, users: int, days: int) -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        # The rows are consistent by construction: skip the per-row foreign key checks (triggers).
        cursor.execute("SET session_replication_role = replica")
    for first in range(0, rows, CHUNK):
        last = min(rows, first + CHUNK) - 1
        with connection.cursor() as cursor:
            cursor.execute(_INSERT, {"first": first, "last": last, "users": users, "days": days})
        print(f"  inserted {last + 1:>11,} rows  {time.perf_counter() - started:7.1f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("ANALYZE usage_usagerecord")
    return time.perf_counter() - started


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def time_pages(runs: int) -> None:
    from django.contrib.auth.models import Group
    from django.test import Client

    from accounts import groups
    from accounts.models import User
    from core.clock import clock

    today = clock().now().date()
    staff = User.objects.create(username="bench-admin", is_staff=True, is_superuser=True)
    manager = User.objects.create(username="bench-manager")
    team = Group.objects.get(name="team-0")
    groups.add_manager(team, manager)
    as_staff, as_manager = Client(HTTP_HOST="127.0.0.1"), Client(HTTP_HOST="127.0.0.1")
    as_staff.force_login(staff)
    as_manager.force_login(manager)

    def get(client: Client, url: str) -> None:
        answer = client.get(url)
        assert answer.status_code == 200, (url, answer.status_code)
        if answer.streaming:
            b"".join(answer.streaming_content)

    ninety = f"?start={(today - timedelta(days=89)).isoformat()}"
    pages = {
        "staff page, 30 days": (as_staff, "/analytics/"),
        "staff page, 90 days": (as_staff, f"/analytics/{ninety}"),
        "staff CSV, 30 days": (as_staff, "/analytics.csv"),
        "group manager's page, 30 days": (as_manager, f"/accounts/groups/{team.pk}/analytics/"),
    }
    for name, (client, url) in pages.items():
        get(client, url)  # warm: the connection, templates, the rollup's pages in PostgreSQL's cache
        print(f"{name:32} median {median_ms(lambda c=client, u=url: get(c, u), runs):8.1f} ms over {runs} runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    setup_django(DATABASE)
    from django.db import connection

    from usage.models import DailyUsage
    from usage.rollup import catch_up

    populate_dimensions(args.users)
    print(f"ledger: {args.rows:,} rows, {args.users} users, {MODELS} models, {args.days} days")
    seconds = insert_ledger(args.rows, args.users, args.days)
    print(f"insert: {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s)")
    started = time.perf_counter()
    catch_up()
    seconds = time.perf_counter() - started
    rollup_rows = DailyUsage.objects.count()
    print(f"rollup build: {seconds:.1f} s ({args.rows / seconds:,.0f} ledger rows/s), {rollup_rows:,} rollup rows")
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, {"first": args.rows, "last": args.rows + 9_999, "users": args.users, "days": 1})
    started = time.perf_counter()
    catch_up()
    print(f"incremental fold of 10,000 new rows: {(time.perf_counter() - started) * 1000:.0f} ms")
    time_pages(args.runs)


if __name__ == "__main__":
    main()
