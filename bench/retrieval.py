"""Retrieval quality and speed of knowledge bases: recall@5 and MRR for vector-only, full-text-only and hybrid
search, with the bundled embedding model and with the fake upstream's embeddings; ingestion pages/s, search
latency p50/p99 (also at --chunks passages) and peak memory.

    .venv/bin/python bench/retrieval.py [--chunks 100000] [--searches 200]

The corpus is the project's own text: README.md and every module of the project (its docstrings and code,
distractors), a "page" being 3,000 characters. bench/data/retrieval_questions.json holds the questions,
each with a phrase of README.md that answers it (reworded in the question): a passage is relevant when it
holds that phrase. Everything runs in this process on a fresh database `chatsite_bench_retrieval` of the
embedded PostgreSQL; embeddings go through the gateway's routing to real servers on loopback (the bundled
model's, chatsite.local_embedding; the fake upstream's, tests/fake_upstream.py, whose vectors hash
a text's words into buckets: a floor that knows no meaning). Bounded: a fixed corpus, a fixed number of searches.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.conversation_list import setup_django  # noqa: E402

PAGE_CHARS = 3000
SKIPPED = ("tests", "migrations", ".venv", "var", "node_modules", "static", "bench", "docs")


def corpus() -> dict[str, str]:
    """README.md and the project's modules, by path."""
    documents = {"README.md": (ROOT / "README.md").read_text()}
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if not any(part in SKIPPED for part in relative.parts[:-1]) and path.stat().st_size > 200:
            documents[str(relative) + ".txt"] = path.read_text()
    return documents


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def ingest(user: Any, name: str, model: Any, documents: dict[str, str]) -> tuple[Any, float]:
    from knowledge import services

    store = services.create_store(user, name, model)
    entries = [services.add_file(store, services.store_file(user, n, t.encode())) for n, t in documents.items()]
    started = time.perf_counter()
    for entry in entries:
        services.ingest(entry.pk)
    elapsed = time.perf_counter() - started
    store.refresh_from_db()
    failed = store.files.exclude(status="completed").count()
    if failed:
        raise SystemExit(f"{failed} files failed to ingest into {name}")
    return store, elapsed


def evaluate(user: Any, store: Any, questions: list[dict[str, str]], mode: str) -> tuple[float, float]:
    from knowledge.search import search

    found_at5 = 0
    reciprocal = 0.0
    for question in questions:
        hits = search(user, store.public_id, question["q"], max_results=10, mode=mode)  # type: ignore[arg-type]
        answer = normalized(question["a"])
        ranks = [i for i, h in enumerate(hits, 1) if h.filename == "README.md" and answer in normalized(h.text)]
        if ranks:
            found_at5 += ranks[0] <= 5
            reciprocal += 1 / ranks[0]
    return found_at5 / len(questions), reciprocal / len(questions)


def latencies(user: Any, store: Any, questions: list[dict[str, str]], searches: int) -> tuple[float, float]:
    from knowledge.search import search

    times = []
    for i in range(searches):
        started = time.perf_counter()
        search(user, store.public_id, questions[i % len(questions)]["q"], max_results=10)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def grow(store: Any, target: int) -> int:
    """Copies the store's distractor passages (never README.md's), each vector jittered, until it holds `target`."""
    from django.db import connection

    from knowledge.models import Chunk

    have = Chunk.objects.filter(store=store).count()
    base = Chunk.objects.filter(store=store).exclude(file__filename="README.md").count()
    copies = max((target - have) // max(base, 1), 0)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO knowledge_chunk (store_id, file_id, position, text, page, section, char_start, char_end,"
            " tokens, dimensions, embedding)"
            " SELECT c.store_id, c.file_id, c.position + 100000 * g, c.text, c.page, c.section, c.char_start,"
            " c.char_end, c.tokens, c.dimensions,"
            " ARRAY(SELECT x + (random() - 0.5) * 0.02 FROM unnest(c.embedding::real[]) x)::vector"
            " FROM knowledge_chunk c JOIN knowledge_storedfile f ON f.id = c.file_id, generate_series(1, %s) g"
            " WHERE c.store_id = %s AND f.filename <> 'README.md'",
            [copies, store.pk],
        )
        cursor.execute("ANALYZE knowledge_chunk")
    return Chunk.objects.filter(store=store).count()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000, help="passages in the store for the latency run")
    parser.add_argument("--searches", type=int, default=200)
    args = parser.parse_args()
    setup_django("chatsite_bench_retrieval")

    from accounts.models import User
    from catalogue.models import LanguageModel, Provider
    from chatsite.local_embedding import register, start_server
    from tests.fake_upstream import FakeUpstream

    questions = json.loads((ROOT / "bench" / "data" / "retrieval_questions.json").read_text())
    documents = corpus()
    pages = sum(len(t) for t in documents.values()) / PAGE_CHARS
    print(
        f"corpus: {len(documents)} documents, {pages:.0f} pages of {PAGE_CHARS} characters; {len(questions)} questions"
    )
    user = User.objects.create_user("bench", "bench@example.com", "bench-password-0123")
    server = start_server(Path(tempfile.mkdtemp()) / "local-embedding.log")
    fake = FakeUpstream().start()
    fake.embedding_dims = 256
    try:
        offline = register(server.base_url)
        provider = Provider.objects.create(name="fake", base_url=fake.base_url)
        hashed = LanguageModel.objects.create(
            public_id="fake-embed", provider=provider, upstream_model="fake-embed", kind="embedding",
            context_length=100_000,
        )  # fmt: skip
        print("\n| embeddings | mode | recall@5 | MRR@10 |\n| --- | --- | --- | --- |")
        stores = {}
        for label, model in (("bundled wordllama-256", offline), ("fake upstream (hashed words)", hashed)):
            store, seconds = ingest(user, label, model, documents)
            stores[label] = (store, seconds)
            for mode in ("vector", "text", "hybrid"):
                recall, mrr = evaluate(user, store, questions, mode)
                print(f"| {label} | {mode} | {recall:.2f} | {mrr:.2f} |")
        print()
        for label, (store, seconds) in stores.items():
            chunks = store.chunks.count()
            print(f"ingestion, {label}: {pages / seconds:.1f} pages/s ({chunks} passages in {seconds:.1f} s)")
        store = stores["bundled wordllama-256"][0]
        p50, p99 = latencies(user, store, questions, args.searches)
        print(f"hybrid search at {store.chunks.count()} passages: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        started = time.perf_counter()
        total = grow(store, args.chunks)
        print(f"(grew the store to {total} passages in {time.perf_counter() - started:.0f} s)")
        p50, p99 = latencies(user, store, questions, args.searches)
        print(f"hybrid search at {total} passages: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    finally:
        server.stop()
        fake.stop()


if __name__ == "__main__":
    main()
