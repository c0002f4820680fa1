"""Four chats at once on the bundled model: how many llama.cpp servers, and how many threads each.

    .venv/bin/python bench/local_fairness.py [--splits 1x1,1x2,2x1,4x1] [--chats 4] [--tokens 96] [--rounds 2]

A llama.cpp server (llama-cpp-python's) answers one request at a time, so `make run` can start
several (`LOCAL_MODEL_SERVERS`), each a deployment of the one model with max_concurrent=1: routing
hands a chat to a free server or makes it wait for one. This bench decides how many. For each split
("2x1" is two servers of one generation thread each; "2x1/1" also limits each to one thread for
prompts, which otherwise use every core) it starts the servers as `make run` does
(chatsite.local_model.start_server), registers them as `make run` does (chatsite.local_model.register),
starts our gateway (one worker) on a fresh bench database, and sends `--chats` streamed chats at
once through /v1/chat/completions, each asking for exactly `--tokens` tokens (greedy, distinct
prompts). Per round it records each chat's time to first token and its end; the table gives, as
medians over the rounds: the fairness ratio (slowest first token / fastest; the goal is at most 2),
the slowest first token, total completion tokens per second of wall time, and the servers' RSS.

Everything listens on 127.0.0.1 and stops by itself. Absolute times on a shared machine vary a lot;
compare the splits with each other, within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench import procs  # noqa: E402
from bench.side_by_side import Server, prepare_database, start_ours  # noqa: E402

TOPICS = ["a lighthouse", "a mountain village", "a river barge", "an old library", "a desert train", "a city garden"]


@dataclass
class Chat:
    first_token: float
    ended: float
    tokens: int


def parse_split(text: str) -> tuple[int, int, int | None]:
    """ "2x1" is two servers of one generation thread; "2x1/1" also gives each one thread for prompts."""
    text, _, batch = text.partition("/")
    servers, _, threads = text.partition("x")
    return int(servers), int(threads or 1), int(batch) if batch else None


async def one_chat(client: httpx.AsyncClient, server: Server, model: str, topic: str, tokens: int) -> Chat:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": f"Write a long story about {topic}."}],
        "temperature": 0,
        "max_tokens": tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first = 0.0
    count = 0
    url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
    async with client.stream("POST", url, json=body, headers=server.headers) as response:
        if response.status_code != 200:
            sys.exit(f"bench: the gateway answered {response.status_code}: {(await response.aread())[:300]!r}")
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content") and not first:
                first = time.perf_counter() - started
            if chunk.get("usage"):
                count = chunk["usage"]["completion_tokens"]
    return Chat(first, time.perf_counter() - started, count)


async def round_of(server: Server, model: str, chats: int, tokens: int) -> list[Chat]:
    async with httpx.AsyncClient(timeout=600) as client:
        return list(
            await asyncio.gather(
                *(one_chat(client, server, model, TOPICS[i % len(TOPICS)], tokens) for i in range(chats))
            )
        )


def measure(split: tuple[int, int, int | None], args: argparse.Namespace, ours: Server) -> dict[str, float]:
    from django.db import connections

    from chatsite.local_model import LocalModelServer, register, start_server

    count, threads, batch = split
    logs = Path(tempfile.mkdtemp(prefix="bench-fairness-"))
    servers: list[LocalModelServer] = []
    try:
        for index in range(count):
            servers.append(start_server(logs / f"server-{index}.log", threads=threads, batch_threads=batch))
        # The running gateway hears of the new deployments by NOTIFY, as it would of an admin's edit.
        model = register([s.base_url for s in servers], servers[0].n_ctx, servers[0].max_output_tokens)
        connections.close_all()
        time.sleep(1)
        asyncio.run(round_of(ours, model.public_id, count, 8))  # warm-up: every server has loaded its weights
        fairness, slowest, rates = [], [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            results = asyncio.run(round_of(ours, model.public_id, args.chats, args.tokens))
            wall = time.perf_counter() - started
            firsts = [r.first_token for r in results]
            fairness.append(max(firsts) / min(firsts))
            slowest.append(max(firsts))
            rates.append(sum(r.tokens for r in results) / wall)
        rss = sum(procs.rss_mib([s.process.pid]) for s in servers)
        return {
            "fairness": statistics.median(fairness),
            "slowest": statistics.median(slowest),
            "rate": statistics.median(rates),
            "rss": rss,
        }
    finally:
        for server in servers:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", default="1x1,1x2,2x1,4x1", help="servers x threads each, comma-separated")
    parser.add_argument("--chats", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=96, help="completion tokens each chat asks for")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("LOCAL_MODEL", "0")

    print("Preparing the bench database...", flush=True)
    db_url, secret_key = prepare_database()
    from django.db import connections

    from accounts.keys import create_key
    from accounts.models import User

    user = User.objects.create_user("bench", password="a-long-and-unusual-password")
    _key, secret = create_key(user, "fairness")
    connections.close_all()
    # Started before the model servers: with LOCAL_MODEL=0 the launcher disables local providers it finds.
    ours = start_ours(None, db_url, secret_key, secret)
    rows = []
    try:
        for text in args.splits.split(","):
            split = parse_split(text)
            print(f"Measuring {text}: {split[0]} server(s) x {split[1]} thread(s)...", flush=True)
            rows.append((text, measure(split, args, ours)))
    finally:
        ours.stop()
    print(
        f"\n{args.chats} streamed chats at once, {args.tokens} tokens each, through the gateway; "
        f"medians of {args.rounds} rounds; {os.cpu_count()} cores\n"
    )
    print("| servers x threads | slowest / fastest first token | slowest first token s | total tokens/s | RSS MiB |")
    print("|---|---|---|---|---|")
    for text, row in rows:
        print(f"| {text} | {row['fairness']:.1f} | {row['slowest']:.2f} | {row['rate']:.0f} | {row['rss']:.0f} |")


if __name__ == "__main__":
    main()
