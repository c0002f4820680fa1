"""The browser's chat path at scale: N chat sockets each asking for a streamed reply at once.

    .venv/bin/python bench/chat_sockets.py [--chats 200] [--chunks 200] [--rounds 2] [--pace-ms MS]
        [--compare-layer] [--profile FILE]

Starts the fast fake upstream (bench/fast_upstream.py, `--chunks` content chunks per reply, sent back
to back) and our site as `make run` serves it (one worker), on a fresh bench database with one
user, session and conversation per chat (a user may have only CHAT_MAX_GENERATIONS replies at
once). Each round opens every socket as the chat page does (session cookie, our Origin), waits for
the stored messages, then sends one "send" frame per socket at once and reads frames until its reply
is complete. With --compare-layer, each round also runs on a second site using channels' stock
in-memory layer (what chatsite.layers replaces), side by side. Printed per round: time to the first
delta and to the complete reply (p50, p99), frames per reply (deltas are batched per conversation),
the site's CPU per reply (its process and PostgreSQL's), and the wall time.
Everything listens on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import websockets  # noqa: E402
from websockets.typing import Origin  # noqa: E402

from bench.side_by_side import MODEL, Server, launch, open_to, prepare_database, seed, start_ours  # noqa: E402
from tests.live_server import free_port  # noqa: E402


@dataclass
class Reply:
    first_delta: float = 0.0
    complete: float = 0.0
    frames: int = 0
    delays: list[float] = field(default_factory=list)  # per chunk: sent by the upstream → read here (paced)
    gaps: list[float] = field(default_factory=list)  # between consecutive delta frames, as read here
    to_upstream: float = 0.0  # paced: the send → the upstream's first chunk, less one pace
    chunks_seen: int = 0
    chunks_stored: int = 0
    content: list[str] = field(default_factory=list)


def sessions(count: int) -> list[tuple[str, int]]:
    """One user, login session and conversation per chat: (session cookie, conversation id)."""
    from django.conf import settings
    from django.db import connections
    from django.test import Client

    from accounts.models import User
    from catalogue.models import LanguageModel
    from conversations.models import Conversation

    model = LanguageModel.objects.get(public_id=MODEL)
    out = []
    for index in range(count):
        user = User.objects.create_user(f"chat-{index}", password=None)
        client = Client()
        client.force_login(user)
        conversation = Conversation.objects.create(owner=user, model=model, title=f"bench {index}")
        out.append((client.cookies[settings.SESSION_COOKIE_NAME].value, conversation.pk))
    connections.close_all()
    return out


def transactions(db_url: str) -> int:
    """PostgreSQL's count of transactions in the bench database (each autocommit query is one)."""
    import psycopg

    with psycopg.connect(db_url) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def one_chat(
    port: int, cookie: str, conversation: int, go: asyncio.Event, ready: list[int], pace: float, delay: float
) -> Reply:
    from django.conf import settings

    url = f"ws://127.0.0.1:{port}/ws/conversations/{conversation}/"
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"}
    reply = Reply()
    last_delta = 0.0
    async with websockets.connect(
        url, origin=Origin(f"http://127.0.0.1:{port}"), additional_headers=headers, max_size=None, open_timeout=120
    ) as socket:
        first = json.loads(await socket.recv())
        if first.get("type") != "messages":
            sys.exit(f"bench: the socket said {first!r}")
        ready.append(conversation)
        await go.wait()
        await asyncio.sleep(delay)
        started = time.perf_counter()
        sent_at = time.time()
        await socket.send(json.dumps({"type": "send", "content": "Tell me a story."}))
        while True:
            frame = json.loads(await asyncio.wait_for(socket.recv(), 300))
            reply.frames += 1
            if frame["type"] == "delta":
                read_at = time.perf_counter() - started
                if reply.first_delta:
                    reply.gaps.append(read_at - last_delta)
                else:
                    reply.first_delta = read_at
                last_delta = read_at
                if pace:
                    now = time.time()
                    stamps = frame["text"].split()
                    if not reply.chunks_seen and stamps:
                        reply.to_upstream = float(stamps[0]) - sent_at - pace
                    reply.delays.extend(now - float(stamp) for stamp in stamps)
                    reply.chunks_seen += len(stamps)
            elif frame["type"] == "error":
                sys.exit(f"bench: the socket refused: {frame!r}")
            elif frame["type"] == "message":
                message = frame["message"]
                if message["role"] == "assistant" and message["status"] != "streaming":
                    if message["status"] != "complete":
                        sys.exit(f"bench: a reply ended {message['status']}: {message.get('error')}")
                    reply.complete = time.perf_counter() - started
                    reply.chunks_stored = len(message["content"].split())
                    return reply


async def round_of(
    server: Server, chats: list[tuple[str, int]], pace: float, spread: float, at_go: Callable[[], None]
) -> tuple[list[Reply], float]:
    go = asyncio.Event()
    ready: list[int] = []
    tasks = [
        asyncio.create_task(one_chat(server.port, cookie, conv, go, ready, pace, spread * index / len(chats)))
        for index, (cookie, conv) in enumerate(chats)
    ]
    while len(ready) < len(chats):
        if any(t.done() for t in tasks):
            for task in tasks:
                if task.done():
                    task.result()
        await asyncio.sleep(0.05)
    at_go()  # every socket is open: what follows is the replies' own cost
    started = time.perf_counter()
    go.set()
    replies = await asyncio.gather(*tasks)
    return list(replies), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=200, help="content chunks per reply from the upstream")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pace-ms", type=float, default=0, help="chunks this far apart, each stamped with the "
                        "moment it was sent: prints each chunk's delay to the socket (p50, p99, max)")  # fmt: skip
    parser.add_argument("--spread", type=float, default=0, metavar="SECONDS", help="send the messages evenly "
                        "over this many seconds rather than all at once")  # fmt: skip
    parser.add_argument("--log-statements", action="store_true", help="PostgreSQL logs every statement (to its log)")
    parser.add_argument("--compare-layer", action="store_true", help="also run each round on channels' own layer")
    parser.add_argument("--compare-checkout", metavar="PATH", help="also run each round on the site of another "
                        "checkout (a worktree of an earlier commit, same migrations), side by side")  # fmt: skip
    parser.add_argument("--profile", metavar="FILE", help="record the site's stacks during the last round with "
                        "py-spy (installed apart: pip install py-spy) as collapsed stacks in FILE")  # fmt: skip
    args = parser.parse_args()

    print("Preparing the bench database...", flush=True)
    db_url, secret_key = prepare_database()
    upstream_port = free_port()
    upstream = Server("fast upstream", upstream_port, {})
    servers: list[Server] = []
    try:
        launch(upstream, [sys.executable, str(ROOT / "bench" / "fast_upstream.py"), str(upstream_port),
                          str(args.chunks), str(args.pace_ms)], dict(os.environ), "/healthz")  # fmt: skip
        servers.append(upstream)
        api_key = seed(f"http://127.0.0.1:{upstream_port}/v1")
        if args.log_statements:
            import psycopg

            with psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute("ALTER DATABASE chatsite_bench SET log_statement = 'all'")
        sites: list[tuple[str, dict[str, str], Path]] = [("ours", {}, ROOT)]
        if args.compare_layer:
            sites.append(("channels' layer", {"DJANGO_SETTINGS_MODULE": "bench.stock_layer_settings"}, ROOT))
        if args.compare_checkout:
            other = Path(args.compare_checkout).resolve()
            commit = subprocess.run(["git", "-C", str(other), "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True, check=True).stdout.strip()  # fmt: skip
            relaxed = open_to(other, db_url)
            print(f"Columns the checkout does not know, made nullable for it: {', '.join(relaxed) or 'none'}")
            sites.append((f"checkout {commit}", {}, other))
        chats = sessions(args.chats * args.rounds * len(sites))
        running = []
        for label, env, root in sites:
            running.append((label, start_ours(None, db_url, secret_key, api_key, env, root)))
            servers.append(running[-1][1])
        when = f"sent over {args.spread:g} s" if args.spread else "sent at once"
        print(f"\n{args.chats} chat sockets, each one reply of {args.chunks} chunks, {when}; one site worker\n")
        print("| round | site | first delta p50 / p99 s | complete p50 / p99 s | frames per reply "
              "| CPU ms per reply from its send (site + PostgreSQL) "
              "| transactions per reply | wall s |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        batches = iter(range(args.rounds * len(sites)))
        for index in range(args.rounds):
            for label, ours in running:
                start = next(batches) * args.chats
                batch = chats[start : start + args.chats]
                spy = None
                if args.profile and index == args.rounds - 1 and label == "ours":
                    assert ours.process is not None
                    spy = subprocess.Popen(["py-spy", "record", "--gil", "-r", "100", "-f", "raw",
                                            "-o", args.profile, "-p", str(ours.process.pid)],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
                    time.sleep(2)
                cpu_before = ours.cpu()
                upstream_before, client_before = upstream.own_cpu(), time.process_time()
                xacts_before = transactions(db_url)
                marks: dict[str, float] = {}

                def at_go(site: Server = ours, marks: dict[str, float] = marks) -> None:
                    marks["cpu"], marks["own"] = site.cpu(), site.own_cpu()

                replies, wall = asyncio.run(round_of(ours, batch, args.pace_ms / 1000, args.spread, at_go))
                time.sleep(1.5)  # the site's backends report their counts about once a second
                xacts = (transactions(db_url) - xacts_before) / len(replies)
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(timeout=60)
                opening = (marks["cpu"] - cpu_before) * 1000 / len(replies)
                cpu = (ours.cpu() - marks["cpu"]) * 1000 / len(replies)
                own = (ours.own_cpu() - marks["own"]) * 1000 / len(replies)
                others = (upstream.own_cpu() - upstream_before, time.process_time() - client_before)
                firsts = [r.first_delta for r in replies]
                ends = [r.complete for r in replies]
                frames = statistics.median(r.frames for r in replies)
                print(
                    f"| {index + 1} | {label} | {percentile(firsts, 0.5):.2f} / {percentile(firsts, 0.99):.2f} "
                    f"| {percentile(ends, 0.5):.2f} / {percentile(ends, 0.99):.2f} | {frames:.0f} "
                    f"| {cpu:.1f} ({own:.1f} + {cpu - own:.1f}) "
                    f"| {xacts:.1f} | {wall:.1f} |",
                    flush=True,
                )
                if args.pace_ms:
                    delays = [d * 1000 for r in replies for d in r.delays]
                    starts = [r.to_upstream * 1000 for r in replies]
                    seen = sum(r.chunks_seen for r in replies)
                    stored = sum(r.chunks_stored for r in replies)
                    print(
                        f"|   | send to upstream p50 {percentile(starts, 0.5):.0f} ms, "
                        f"p99 {percentile(starts, 0.99):.0f} ms; chunk delay p50 {percentile(delays, 0.5):.0f} ms, "
                        f"p99 {percentile(delays, 0.99):.0f} ms, "
                        f"max {max(delays):.0f} ms; chunks read {seen} and stored {stored} of "
                        f"{args.chunks * len(replies)} sent; beside the site, CPU s: the fake upstream "
                        f"{others[0]:.1f}, this client {others[1]:.1f}; opening a socket {opening:.1f} ms of CPU "
                        "||||||",
                        flush=True,
                    )
        for label, ours in running:
            print(f"\nRSS of the site ({label}) after the rounds: {ours.rss():.0f} MiB")
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    main()
