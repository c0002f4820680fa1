"""CPU our server spends per tool step, beside a plain request, in one run.

    .venv/bin/python bench/tool_steps.py [--requests 300] [--concurrency 8] [--rounds 3]

Our site as `make run` serves it (bench/side_by_side.py's harness, a fresh `chatsite_bench` database),
a model whose upstream (in this process) calls the tool it is offered once, then answers, and a real MCP
server (tests/tools/mcp_server.py, in this process) registered by the admin. Each round sends
`--requests` plain chat completions, then as many with `"mcp_servers": ["bench"]` (one tool step each:
the MCP `add` call, the second model call with its result; the tool list is cached), reading the CPU
of our server's processes and PostgreSQL's before and after. The upstream's and the MCP server's CPU
is this process's, not counted. Printed: CPU per plain request, per request with a tool step, and the
step's own (the difference), as medians of the rounds, with their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402

from bench.loadgen import build_request, run_requests  # noqa: E402
from bench.side_by_side import BODY, PATH, Server, prepare_database, seed, start_ours  # noqa: E402
from tests.live_server import free_port  # noqa: E402


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    """A tool call of the first tool offered, unless the conversation already holds a result: then text."""
    tools = request.get("tools") or []
    message: dict[str, Any] = {"role": "assistant", "content": "It is 3.", "refusal": None}
    finish = "stop"
    if tools and request["messages"][-1]["role"] != "tool":
        name = next((t["function"]["name"] for t in tools if t["function"]["name"].endswith("__add")), None)
        call = {"id": "call_bench", "type": "function", "function": {"name": name, "arguments": '{"a": 1, "b": 2}'}}
        message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "bench"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
    }


async def read_json(receive: Any) -> Any:
    """An ASGI request's JSON body ({} when empty)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return json.loads(body or b"{}")


async def upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    answer = json.dumps(_answer(await read_json(receive))).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


def serve_in_thread(app: Any) -> int:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return port


def cpu_ms_per_request(server: Server, body: dict[str, Any], concurrency: int, total: int) -> tuple[float, int]:
    raw = build_request("127.0.0.1", server.port, PATH, json.dumps(body).encode(), server.headers)
    before = server.cpu()
    result = asyncio.run(run_requests("127.0.0.1", server.port, raw, concurrency, total))
    return (server.cpu() - before) / result.requests * 1000, result.errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from tests.tools import mcp_server

    upstream_port = serve_in_thread(upstream)
    mcp_port = serve_in_thread(mcp_server.app())
    db_url, secret_key = prepare_database()
    api_key = seed(f"http://127.0.0.1:{upstream_port}/v1")
    from django.db import connections

    from tools import services

    services.put_global_server("bench", f"http://127.0.0.1:{mcp_port}/mcp", None, allow_internal=True)
    connections.close_all()
    server = start_ours(None, db_url, secret_key, api_key)
    plain_body, tool_body = BODY, {**BODY, "mcp_servers": ["bench"]}
    try:
        cpu_ms_per_request(server, plain_body, args.concurrency, 100)  # warm-up
        cpu_ms_per_request(server, tool_body, args.concurrency, 50)
        plain: list[float] = []
        tools: list[float] = []
        errors = 0
        for _ in range(args.rounds):
            figure, failed = cpu_ms_per_request(server, plain_body, args.concurrency, args.requests)
            plain.append(figure)
            errors += failed
            figure, failed = cpu_ms_per_request(server, tool_body, args.concurrency, args.requests)
            tools.append(figure)
            errors += failed
    finally:
        server.stop()
    p, t = statistics.median(plain), statistics.median(tools)
    print(f"CPU per request (our server + PostgreSQL), median of {args.rounds} rounds of {args.requests}:")
    print(f"  plain chat completion          {p:7.2f} ms   (rounds {', '.join(f'{v:.2f}' for v in plain)})")
    print(f"  with one MCP tool step         {t:7.2f} ms   (rounds {', '.join(f'{v:.2f}' for v in tools)})")
    print(f"  the tool step itself           {t - p:7.2f} ms   ({(t - p) / p:.2f}x a plain request)")
    if errors:
        print(f"  errors: {errors}")


if __name__ == "__main__":
    main()
