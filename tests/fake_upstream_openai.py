"""The fake upstream's other OpenAI endpoints: completions, embeddings and a Responses-speaking mode.

Written from OpenAI's documentation independently of the gateway's own translation code, so a
translation bug cannot be mirrored here. Used by tests/fake_upstream.py, which routes:

    POST /v1/completions    text completions, streamed (with a usage chunk when asked) and not
    POST /v1/embeddings     one vector per input, `encoding_format` float or base64 (float32 LE)
    POST /v1/responses      only while `fake_upstream.speaks_responses` is true: a Response, or its
                            stream of events (`event:` and `data:` lines, numbered)

The scripted `Reply` says what comes back: `content` (text), `chunks`, `delay`, `tool_calls`,
`reasoning`, `status`/`error_*`, `fail_after_chunks`, `usage`. Embeddings have
`fake_upstream.embedding_dims` dimensions unless the request asks for `dimensions`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fake_upstream import Reply

Send = Callable[[dict[str, Any]], Awaitable[None]]
Event = Callable[[dict[str, Any] | str], Awaitable[None]]


def _words(value: Any) -> int:
    """Prompt tokens as the fake counts them: words of text, items of token lists."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(1 if isinstance(item, int) else _words(item) for item in value)
    if isinstance(value, dict):
        return sum(_words(item) for key, item in value.items() if key in ("text", "content", "input", "output"))
    return 0


def _pieces(text: str, chunks: int | None) -> list[str]:
    if not chunks:
        words = text.split(" ")
        return [word if i == 0 else " " + word for i, word in enumerate(words)]
    size = max(1, -(-len(text) // chunks))
    return [text[i : i + size] for i in range(0, len(text), size)]


# --- completions ------------------------------------------------------------------------------


def _prompts(request: dict[str, Any]) -> list[Any]:
    prompt = request.get("prompt")
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        return prompt
    return [prompt if prompt is not None else ""]


def completion(reply: Reply, request: dict[str, Any], model: str) -> dict[str, Any]:
    prompts, n = _prompts(request), int(request.get("n") or 1)
    choices = []
    for position, prompt in enumerate(prompts):
        text = (prompt if request.get("echo") and isinstance(prompt, str) else "") + reply.content
        if request.get("suffix"):
            text += request["suffix"]
        for copy in range(n):
            choices.append(
                {
                    "text": text,
                    "index": position * n + copy,
                    "logprobs": None,
                    "finish_reason": reply.finish_reason or "stop",
                }
            )
    body: dict[str, Any] = {
        "id": "cmpl-fake",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }
    if reply.usage:
        prompt_tokens = _words(request.get("prompt"))
        completion_tokens = len(_pieces(reply.content, reply.chunks)) * len(choices)
        body["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
    return body


async def stream_completion(
    reply: Reply, request: dict[str, Any], model: str, event: Event, pause: Callable[[], Awaitable[bool]]
) -> bool:
    """Stream a text completion; False when it stopped early (the client left, or a scripted failure)."""
    base = {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()), "model": model}
    count = len(_prompts(request)) * int(request.get("n") or 1)
    pieces = _pieces(reply.content, reply.chunks)
    for sent, piece in enumerate(pieces):
        if reply.fail_after_chunks is not None and sent >= reply.fail_after_chunks:
            await event(
                {"error": {"message": reply.error_message, "type": "server_error", "param": None, "code": None}}
            )
            return False
        if sent and await pause():
            return False
        for index in range(count):
            choice = {"text": piece, "index": index, "logprobs": None, "finish_reason": None}
            await event({**base, "choices": [choice]})
    for index in range(count):
        choice = {"text": "", "index": index, "logprobs": None, "finish_reason": reply.finish_reason or "stop"}
        await event({**base, "choices": [choice]})
    if reply.usage and (request.get("stream_options") or {}).get("include_usage"):
        prompt_tokens, completion_tokens = _words(request.get("prompt")), len(pieces) * count
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        await event({**base, "choices": [], "usage": usage})
    await event("[DONE]")
    return True


# --- embeddings -------------------------------------------------------------------------------


_WORD = re.compile(r"[a-z0-9]+")


def vector(value: Any, dims: int) -> list[float]:
    """A deterministic vector for an input (the same input, the same vector).

    A text's is its words hashed into `dims` buckets (feature hashing, unit length), so texts sharing words
    are near, as a real model's would be for those (without any meaning beyond the words); anything else
    (token lists, a text without words) gets a hash of its JSON.
    """
    words = _WORD.findall(value.lower()) if isinstance(value, str) else []
    if words:
        buckets = [0.0] * dims
        for word in words:
            digest = hashlib.sha256(word.encode()).digest()
            buckets[int.from_bytes(digest[:4], "big") % dims] += 1.0 if digest[4] & 1 else -1.0
        norm = sum(v * v for v in buckets) ** 0.5 or 1.0
        return [round(v / norm, 6) for v in buckets]
    seed = json.dumps(value).encode()
    values: list[float] = []
    counter = 0
    while len(values) < dims:
        digest = hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        values += [(byte - 127.5) / 127.5 for byte in digest]
        counter += 1
    return [round(v, 6) for v in values[:dims]]


def embeddings(request: dict[str, Any], model: str, default_dims: int, usage: bool = True) -> dict[str, Any]:
    raw = request.get("input")
    inputs = [raw] if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)) else raw
    dims = int(request.get("dimensions") or default_dims)
    data = []
    for index, item in enumerate(inputs or []):
        values = vector(item, dims)
        encoded: Any = values
        if request.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{dims}f", *values)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    body: dict[str, Any] = {"object": "list", "data": data, "model": model}
    if usage:
        tokens = _words(inputs)
        body["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return body


# --- the Responses API ------------------------------------------------------------------------


def _response(request: dict[str, Any], model: str, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    body = {
        "id": "resp_fake",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        # OpenAI echoes function tools with their defaults filled in (strict is on unless turned off).
        "tools": [
            {"parameters": None, "strict": True, **tool} if tool.get("type") == "function" else tool
            for tool in request.get("tools") or []
        ],
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        "metadata": request.get("metadata") or {},
    }
    if status == "completed":
        body["completed_at"] = body["created_at"]
    return body


def _usage(request: dict[str, Any], output_tokens: int) -> dict[str, Any]:
    input_tokens = _words(request.get("input")) + _words(request.get("instructions"))
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _items(reply: Reply) -> list[dict[str, Any]]:
    """The finished output items of a reply."""
    items: list[dict[str, Any]] = []
    if reply.reasoning:
        summary = [{"type": "summary_text", "text": reply.reasoning}]
        items.append({"id": "rs_fake", "type": "reasoning", "summary": summary})
    if reply.tool_calls:
        for position, call in enumerate(reply.tool_calls):
            items.append(
                {
                    "id": f"fc_fake_{position}",
                    "type": "function_call",
                    "status": "completed",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.arguments,
                }
            )
    else:
        text = {"type": "output_text", "text": reply.content, "annotations": [], "logprobs": []}
        items.append(
            {"id": "msg_fake", "type": "message", "status": "completed", "role": "assistant", "content": [text]}
        )
    return items


def response(reply: Reply, request: dict[str, Any], model: str) -> dict[str, Any]:
    body = _response(request, model, "completed", _items(reply))
    if reply.usage:
        body["usage"] = _usage(request, len(_pieces(reply.content, reply.chunks)))
    return body


async def stream_response(
    reply: Reply, request: dict[str, Any], model: str, send_event: Event, pause: Callable[[], Awaitable[bool]]
) -> bool:
    """Stream a Response's events as OpenAI does; False when it stopped early."""
    sequence = 0

    async def event(kind: str, **fields: Any) -> None:
        nonlocal sequence
        await send_event({"type": kind, **fields, "sequence_number": sequence})
        sequence += 1

    await event("response.created", response=_response(request, model, "in_progress", []))
    await event("response.in_progress", response=_response(request, model, "in_progress", []))
    sent = 0
    for index, item in enumerate(_items(reply)):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            text = item["summary"][0]["text"]
            await event("response.output_item.added", output_index=index, item={**item, "summary": []})
            part = {"type": "summary_text", "text": ""}
            await event("response.reasoning_summary_part.added", **where, summary_index=0, part=part)
            await event("response.reasoning_summary_text.delta", **where, summary_index=0, delta=text)
            await event("response.reasoning_summary_text.done", **where, summary_index=0, text=text)
            done_part = {"type": "summary_text", "text": text}
            await event("response.reasoning_summary_part.done", **where, summary_index=0, part=done_part)
        elif item["type"] == "function_call":
            await event("response.output_item.added", output_index=index, item={**item, "arguments": ""})
            await event("response.function_call_arguments.delta", **where, delta=item["arguments"])
            done = {"name": item["name"], "arguments": item["arguments"]}
            await event("response.function_call_arguments.done", **where, **done)
        else:
            await event("response.output_item.added", output_index=index, item={**item, "content": []})
            empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            await event("response.content_part.added", **where, content_index=0, part=empty)
            for piece in _pieces(reply.content, reply.chunks):
                if reply.fail_after_chunks is not None and sent >= reply.fail_after_chunks:
                    failed = _response(request, model, "failed", [])
                    failed["error"] = {"code": "server_error", "message": reply.error_message}
                    await event("response.failed", response=failed)
                    return False
                if sent and await pause():
                    return False
                await event("response.output_text.delta", **where, content_index=0, delta=piece, logprobs=[])
                sent += 1
            text = item["content"][0]["text"]
            await event("response.output_text.done", **where, content_index=0, text=text, logprobs=[])
            await event("response.content_part.done", **where, content_index=0, part=item["content"][0])
        await event("response.output_item.done", output_index=index, item=item)
    await event("response.completed", response=response(reply, request, model))
    return True
