"""Chats waiting on a slow MCP tool leave the other chats' streams alone.

    .venv/bin/python bench/tool_chats.py [--waiting 100] [--plain 20] [--chunks 40] [--pace-ms 20]

Our site as `make run` serves it (bench/side_by_side.py's harness, a fresh `chatsite_bench` database,
one worker), a model upstream in this process and a real MCP server (tests/tools/mcp_server.py, in this
process) registered by the admin as `bench`. A waiting chat's conversation offers that server: the
model calls its `hang` tool, which answers only when cancelled. A plain chat's reply is `--chunks`
chunks `--pace-ms` apart, each stamped with the moment the upstream sent it (bench/chat_sockets.py's
client reads the stamps). Two runs of `--plain` chats at once: alone, then with `--waiting` chats all
in their tool call (each seen as a running tool frame on its socket); the waiting chats are then
stopped (which cancels their calls). Printed: each chunk's delay from the upstream to the socket and
the gap between delta frames (p50, p99), for both runs, and their ratio.
Everything listens on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import websockets  # noqa: E402
from websockets.typing import Origin  # noqa: E402

from bench.chat_sockets import Reply, percentile, round_of, sessions  # noqa: E402
from bench.side_by_side import Server, prepare_database, seed, start_ours  # noqa: E402
from bench.tool_steps import read_json, serve_in_thread  # noqa: E402

HANG = "bench__hang"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "bench",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def upstream(chunks: int, pace: float) -> Any:
    """A streaming model: calls the hanging tool when it is offered, else writes paced, stamped chunks."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = await read_json(receive)
        offered = {tool["function"]["name"] for tool in request.get("tools") or ()}
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})

        async def out(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        await out(_chunk({"role": "assistant", "content": ""}))
        if HANG in offered:
            call = {"index": 0, "id": "call_hang", "type": "function", "function": {"name": HANG, "arguments": "{}"}}
            tail = _chunk({"tool_calls": [call]}) + _chunk({}, "tool_calls")
        else:
            for _ in range(chunks):
                await asyncio.sleep(pace)
                await out(_chunk({"content": f"{time.time():.6f} "}))
            tail = _chunk({}, "stop")
        usage = {"prompt_tokens": 9, "completion_tokens": chunks, "total_tokens": 9 + chunks}
        last = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "model": "bench", "choices": []}
        tail += b"data: " + json.dumps({**last, "created": 0, "usage": usage}).encode() + b"\n\n"
        await send({"type": "http.response.body", "body": tail + b"data: [DONE]\n\n", "more_body": False})

    return app


async def waiting_chat(port: int, cookie: str, conversation: int, in_tool: asyncio.Event, stop: asyncio.Event) -> None:
    """Sends a message, sees its tool call running, then waits for `stop` and stops the reply."""
    from django.conf import settings

    url = f"ws://127.0.0.1:{port}/ws/conversations/{conversation}/"
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"}
    async with websockets.connect(
        url, origin=Origin(f"http://127.0.0.1:{port}"), additional_headers=headers, max_size=None, open_timeout=120
    ) as socket:
        await socket.recv()
        await socket.send(json.dumps({"type": "send", "content": "Wait for the tool."}))
        while True:
            frame = json.loads(await asyncio.wait_for(socket.recv(), 120))
            if frame["type"] == "tool" and frame["call"]["state"] == "running":
                break
            if frame["type"] == "error":
                sys.exit(f"bench: a waiting chat was refused: {frame!r}")
        in_tool.set()
        await stop.wait()
        await socket.send(json.dumps({"type": "stop"}))
        while True:
            frame = json.loads(await asyncio.wait_for(socket.recv(), 120))
            message = frame.get("message") if frame["type"] == "message" else None
            if message and message["role"] == "assistant" and message["status"] != "streaming":
                return


async def plain_round(server: Server, chats: list[tuple[str, int]], pace: float) -> list[Reply]:
    replies, _ = await round_of(server, chats, pace, 0, lambda: None)
    return replies


async def with_waiting(
    server: Server, plain: list[tuple[str, int]], waiting: list[tuple[str, int]], pace: float
) -> tuple[list[Reply], float]:
    stop = asyncio.Event()
    seen = [asyncio.Event() for _ in waiting]
    started = time.perf_counter()
    waiters = [
        asyncio.create_task(waiting_chat(server.port, cookie, conv, event, stop))
        for (cookie, conv), event in zip(waiting, seen, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in seen)), 300)
    settled = time.perf_counter() - started
    try:
        replies = await plain_round(server, plain, pace)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*waiters), 300)
    return replies, settled


def figures(replies: list[Reply]) -> tuple[float, float, float, float]:
    """Chunk delay p50, p99 and delta frame gap p50, p99, in ms."""
    delays = [d * 1000 for r in replies for d in r.delays]
    gaps = [g * 1000 for r in replies for g in r.gaps]
    return (percentile(delays, 0.5), percentile(delays, 0.99), percentile(gaps, 0.5), percentile(gaps, 0.99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waiting", type=int, default=100)
    parser.add_argument("--plain", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--pace-ms", type=float, default=20)
    args = parser.parse_args()
    pace = args.pace_ms / 1000

    from tests.tools import mcp_server

    upstream_port = serve_in_thread(upstream(args.chunks, pace))
    mcp_port = serve_in_thread(mcp_server.app())
    print("Preparing the bench database...", flush=True)
    db_url, secret_key = prepare_database()
    api_key = seed(f"http://127.0.0.1:{upstream_port}/v1")
    from django.db import connections

    from conversations.models import Conversation
    from tools import services

    services.put_global_server("bench", f"http://127.0.0.1:{mcp_port}/mcp", None, allow_internal=True)
    chats = sessions(2 * args.plain + args.waiting)
    alone, beside, waiting = chats[: args.plain], chats[args.plain : 2 * args.plain], chats[2 * args.plain :]
    Conversation.objects.filter(pk__in=[conv for _, conv in waiting]).update(tools={"mcp_servers": ["bench"]})
    connections.close_all()
    server: Server = start_ours(None, db_url, secret_key, api_key)
    try:
        first = asyncio.run(plain_round(server, alone, pace))
        second, settled = asyncio.run(with_waiting(server, beside, waiting, pace))
    finally:
        server.stop()
    a, b = figures(first), figures(second)
    print(f"\n{args.plain} plain chats at once, {args.chunks} chunks {args.pace_ms:g} ms apart; one site worker")
    print(f"{args.waiting} chats in a hanging MCP tool call for the second run (all running after {settled:.1f} s)\n")
    print("| run | chunk delay p50 / p99 ms | delta frame gap p50 / p99 ms |")
    print("|---|---|---|")
    print(f"| alone | {a[0]:.1f} / {a[1]:.1f} | {a[2]:.1f} / {a[3]:.1f} |")
    print(f"| beside {args.waiting} waiting | {b[0]:.1f} / {b[1]:.1f} | {b[2]:.1f} / {b[3]:.1f} |")
    ratios = [y / x if x else float("nan") for x, y in zip(a, b, strict=True)]
    print(f"| ratio | {ratios[0]:.2f} / {ratios[1]:.2f} | {ratios[2]:.2f} / {ratios[3]:.2f} |")


if __name__ == "__main__":
    main()
