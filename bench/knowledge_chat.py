"""The chat's first token with a knowledge base attached against without, in one run.

    .venv/bin/python bench/knowledge_chat.py [--pages 300] [--questions 40] [--embedding wordllama-256]

Starts the fast fake upstream (bench/fast_upstream.py) and our site as `make run` serves it, on a fresh bench
database of the embedded PostgreSQL. One user has a knowledge base of `--pages` pages of text (a manual of
numbered sections, embedded by the bundled embedding model and ingested by the site's worker before the
timed part, which is the search, not the ingestion) and, for each
question, two new conversations: one searching that knowledge base, one not. The questions alternate between
the two over the chat socket, one at a time, each timed from the "send" frame to the reply's first delta.
Printed: p50 and p90 of both, and their ratio. The machine is shared: compare only figures of one run.
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

import websockets  # noqa: E402
from websockets.typing import Origin  # noqa: E402

from bench.side_by_side import MODEL, Server, launch, prepare_database, seed, start_ours  # noqa: E402
from tests.live_server import free_port  # noqa: E402

TOPICS = ["brakes", "battery", "tyres", "wipers", "radio", "lights", "oil", "coolant", "filters", "seats"]


def manual(pages: int) -> str:
    """A Markdown manual of `pages` pages (about 3,000 characters each), a section per page."""
    sections = []
    for page in range(1, pages + 1):
        topic = TOPICS[page % len(TOPICS)]
        body = " ".join(
            f"Step {step} of servicing the {topic} in model {page}: check part {page * 100 + step} "
            f"and record reading {step * page % 97} in the log before going on."
            for step in range(1, 22)
        )
        sections.append(f"## Section {page}: the {topic}\n\n{body}\n")
    return "# Service manual\n\n" + "\n".join(sections)


def prepare(pages: int, questions: int, embedding: str) -> tuple[str, list[tuple[int, int]], int]:
    """The reader's session cookie, pairs of (with, without) conversation ids, and the chunks ingested (by the
    site's own worker, with the `embedding` model if it is there, else by full text alone)."""
    from django.conf import settings
    from django.db import connections
    from django.test import Client

    from accounts.models import User
    from catalogue.models import LanguageModel
    from conversations.models import Conversation
    from knowledge import services
    from knowledge.models import Chunk, VectorStoreFile

    model = LanguageModel.objects.get(public_id=MODEL)
    embedder = LanguageModel.objects.filter(public_id=embedding, kind=LanguageModel.Kind.EMBEDDING).first()
    user = User.objects.create_user("reader", password=None)
    store = services.create_store(user, "Service manual", embedder)
    started = time.perf_counter()
    entry = services.add_file(store, services.store_file(user, "manual.md", manual(pages).encode()))
    while entry.status == VectorStoreFile.Status.IN_PROGRESS and time.perf_counter() - started < 900:
        time.sleep(0.5)
        entry.refresh_from_db()
    if entry.status != VectorStoreFile.Status.COMPLETED:
        sys.exit(f"bench: the manual was not ingested: {entry.status} {entry.last_error}")
    chunks = Chunk.objects.filter(store=store).count()
    how = f"embedded by {embedder.public_id}, hybrid search" if embedder else "no embedding model: full text alone"
    print(f"The worker ingested {pages} pages into {chunks} chunks in {time.perf_counter() - started:.1f} s ({how})")
    pairs = []
    for index in range(questions):
        with_knowledge = Conversation.objects.create(owner=user, model=model, title=f"with {index}")
        with_knowledge.knowledge_bases.add(store)
        without = Conversation.objects.create(owner=user, model=model, title=f"without {index}")
        pairs.append((with_knowledge.pk, without.pk))
    client = Client()
    client.force_login(user)
    connections.close_all()
    return client.cookies[settings.SESSION_COOKIE_NAME].value, pairs, chunks


async def first_token(port: int, cookie: str, conversation: int, question: str) -> tuple[float, int]:
    """Seconds from the send to the first delta, and how many sources the reply kept."""
    from django.conf import settings

    url = f"ws://127.0.0.1:{port}/ws/conversations/{conversation}/"
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"}
    async with websockets.connect(url, origin=Origin(f"http://127.0.0.1:{port}"), additional_headers=headers) as ws:
        if json.loads(await ws.recv()).get("type") != "messages":
            sys.exit("bench: the socket did not open as the page's does")
        started = time.perf_counter()
        await ws.send(json.dumps({"type": "send", "content": question}))
        first = 0.0
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 120))
            if frame["type"] == "delta" and not first:
                first = time.perf_counter() - started
            elif frame["type"] == "error":
                sys.exit(f"bench: the socket refused: {frame!r}")
            elif frame["type"] == "message" and frame["message"]["role"] == "assistant":
                if frame["message"]["status"] not in ("streaming", "complete"):
                    sys.exit(f"bench: a reply ended {frame['message']['status']}: {frame['message']['error']}")
                if frame["message"]["status"] == "complete":
                    return first, len(frame["message"]["sources"])


def quantile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run(port: int, cookie: str, pairs: list[tuple[int, int]]) -> tuple[list[float], list[float], int]:
    with_times: list[float] = []
    without_times: list[float] = []
    cited = 0
    for index, (with_knowledge, without) in enumerate(pairs):
        topic = TOPICS[index % len(TOPICS)]
        question = f"Which part do I check at step {index % 20 + 1} of servicing the {topic}?"
        # Alternating which goes first evens out any drift of the machine's load.
        order = [(with_knowledge, with_times), (without, without_times)]
        for conversation, times in order if index % 2 == 0 else reversed(order):
            seconds, sources = await first_token(port, cookie, conversation, question)
            times.append(seconds)
            cited += sources if conversation == with_knowledge else 0
    return with_times, without_times, cited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--embedding", default="wordllama-256", help="the knowledge base's embedding model "
                        "(the bundled one by default; one that is not there: full text alone)")  # fmt: skip
    args = parser.parse_args()
    print("Preparing the bench database...", flush=True)
    db_url, secret_key = prepare_database()
    upstream_port = free_port()
    upstream = Server("fast upstream", upstream_port, {})
    servers: list[Server] = []
    try:
        launch(upstream, [sys.executable, str(ROOT / "bench" / "fast_upstream.py"), str(upstream_port), "20", "0"],
               dict(os.environ), "/healthz")  # fmt: skip
        servers.append(upstream)
        api_key = seed(f"http://127.0.0.1:{upstream_port}/v1")
        ours = start_ours(None, db_url, secret_key, api_key)
        servers.append(ours)
        cookie, pairs, _chunks = prepare(args.pages, args.questions, args.embedding)
        with_times, without_times, cited = asyncio.run(run(ours.port, cookie, pairs))
    finally:
        for server in reversed(servers):
            server.stop()
    ms = 1000.0
    print(f"\nFirst token over the chat socket, {len(pairs)} questions each (ms):")
    print(f"{'':28} {'p50':>8} {'p90':>8} {'mean':>8}")
    for name, times in (("with a knowledge base", with_times), ("without", without_times)):
        print(
            f"{name:28} {quantile(times, 0.5) * ms:8.1f} {quantile(times, 0.9) * ms:8.1f} "
            f"{statistics.fmean(times) * ms:8.1f}"
        )
    print(f"ratio with / without (p50): {quantile(with_times, 0.5) / quantile(without_times, 0.5):.2f}")
    print(f"sources kept per reply with the knowledge base: {cited / len(pairs):.1f}")


if __name__ == "__main__":
    main()
