"""What the chat's conversation list costs with thousands of conversations.

    .venv/bin/python bench/conversation_list.py [--conversations 5000] [--runs 15]

Starts the embedded PostgreSQL (database `chatsite_bench_list`, recreated), gives one user N
conversations (one message each, a tenth pinned, activity spread over a year), then times in process
(Django's test client, the whole middleware stack, no network) and prints median server time and
payload size of: the chat page (its first 50 rows), the list's first keyset page, a keyset page deep
in the list (row ~N*0.9), the same depth read the old way (?page=N, an OFFSET), and a search.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.live_server import database_url  # noqa: E402

DATABASE = "chatsite_bench_list"


def setup_django(database: str = DATABASE) -> None:
    """Django on a fresh database `database` of the embedded PostgreSQL, migrated."""
    from urllib.parse import parse_qs, urlparse

    import psycopg

    from chatsite.embedded_db import ensure_embedded_postgres

    uri = ensure_embedded_postgres(ROOT / "var" / "pgdata")
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {database}")
    parsed = urlparse(uri)
    host = parse_qs(parsed.query)["host"][0]
    os.environ["DATABASE_URL"] = database_url({"USER": parsed.username, "HOST": host, "PORT": "", "NAME": database})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    os.environ.setdefault("API_REQUESTS_PER_MINUTE", "0")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def populate(count: int) -> Any:
    from django.utils import timezone

    from accounts.models import User
    from conversations.models import Conversation, Message

    user = User.objects.create_user("bench", password="bench-password-1")
    now = timezone.now()
    step = timedelta(days=365) / count
    rows = Conversation.objects.bulk_create(
        Conversation(
            owner=user,
            title=f"Conversation {i} about topic {i % 97}",
            pinned=i % 10 == 0,
            created_at=now - step * i,
            updated_at=now - step * i,
        )
        for i in range(count)
    )
    Message.objects.bulk_create(
        Message(conversation=c, role="user", content=f"Question number {c.pk} on subject {c.pk % 89}") for c in rows
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return user


def measure(runs: int, call: Callable[[], Any]) -> tuple[float, int]:
    times, size = [], 0
    call()  # warm caches and connections
    for _ in range(runs):
        start = time.perf_counter()
        response = call()
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (response.status_code, response.content[:300])
        size = len(response.content)
    return statistics.median(times) * 1000, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    setup_django()
    from django.test import Client

    from conversations import listing

    started = time.perf_counter()
    user = populate(args.conversations)
    print(f"{args.conversations} conversations created in {time.perf_counter() - started:.1f} s")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)

    depth = int(args.conversations * 0.9)
    deep = listing.listed(user)[depth - 1 : depth]
    cursor = listing.encode_cursor(deep[0])
    api = "/api/conversations/"
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("chat page (first 50 rows)", lambda: client.get("/")),
        ("keyset page 1 (?cursor=)", lambda: client.get(api, {"cursor": "", "page_size": 50})),
        (f"keyset page at row {depth}", lambda: client.get(api, {"cursor": cursor, "page_size": 50})),
        (f"offset page at row {depth} (?page=)", lambda: client.get(api, {"page": depth // 50, "page_size": 50})),
        ("search 'subject 42' (keyset)", lambda: client.get(api, {"cursor": "", "q": "subject 42", "page_size": 50})),
    ]
    print(f"{'':40} {'median ms':>10} {'bytes':>9}")
    for name, call in cases:
        ms, size = measure(args.runs, call)
        print(f"{name:40} {ms:10.1f} {size:9d}")
    print("the rows alone (the database's part):")
    qs = listing.listed(user)
    queries: list[tuple[str, Callable[[], Any]]] = [
        ("keyset, first page", lambda: listing.page(qs)),
        (f"keyset, row {depth}", lambda: listing.page(qs, cursor)),
        (f"offset, row {depth} (+ count)", lambda: (qs.count(), list(qs[depth : depth + 50]))),
    ]
    for name, query in queries:
        query()
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            query()
            times.append(time.perf_counter() - start)
        print(f"{name:40} {statistics.median(times) * 1000:10.2f}")


if __name__ == "__main__":
    main()
