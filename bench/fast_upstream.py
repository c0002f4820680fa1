"""A fast fake OpenAI-compatible upstream for benchmarks: fixed answers, no recording.

    python bench/fast_upstream.py PORT [CHUNKS] [PACE_MS]

POST /v1/chat/completions answers a small completion, or with `"stream": true` a stream of
CHUNKS content chunks (default 50) sent back to back, plus the usage chunk when asked. With
PACE_MS, chunks come PACE_MS apart as a model writes them, and each chunk's text is the moment it
was sent (`time.time()` and a space), so a client can tell how late each one reached it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import uvicorn

CHUNKS = int(sys.argv[2]) if len(sys.argv) > 2 else 50
PACE = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.0


def _completion(model: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello! How can I help you today?", "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
        }
    ).encode()


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = json.loads(body or b"{}")
    model = str(request.get("model", "bench"))
    if not request.get("stream"):
        answer = _completion(model)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    await send(
        {"type": "http.response.body", "body": _chunk(model, {"role": "assistant", "content": ""}), "more_body": True}
    )
    for index in range(CHUNKS):
        if PACE:
            await asyncio.sleep(PACE)
        text = f"{time.time():.6f} " if PACE else f" tok{index}"
        await send({"type": "http.response.body", "body": _chunk(model, {"content": text}), "more_body": True})
    tail = _chunk(model, {}, "stop")
    if (request.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": 9, "completion_tokens": CHUNKS, "total_tokens": 9 + CHUNKS}
        tail += (
            b"data: "
            + json.dumps(
                {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": model,
                 "choices": [], "usage": usage}
            ).encode()
            + b"\n\n"
        )  # fmt: skip
    await send({"type": "http.response.body", "body": tail + b"data: [DONE]\n\n", "more_body": False})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, interface="asgi3")
