"""The bundled local model here: cold start of its server, generation speed, memory.

Run: .venv/bin/python bench/local_model.py [--runs N]
Starts the model server as `make run` does (chatsite.local_model.start_server), N times for the cold start,
then measures decode speed (completion tokens per second of wall time, non-streamed and streamed, greedy,
max 256 tokens) and prompt processing speed (a long prompt, one output token).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from chatsite.local_model import MODEL_ID, LocalModelServer, start_server

STORY = "Write a long story about a lighthouse keeper and a storm."


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def chat(server: LocalModelServer, content: str, max_tokens: int) -> tuple[dict, float]:
    body = {"model": MODEL_ID, "messages": [{"role": "user", "content": content}], "temperature": 0,
            "max_tokens": max_tokens}  # fmt: skip
    started = time.perf_counter()
    answer = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=300).json()
    return answer, time.perf_counter() - started


def stream(server: LocalModelServer, content: str, max_tokens: int) -> tuple[int, float, float]:
    body = {"model": MODEL_ID, "messages": [{"role": "user", "content": content}], "temperature": 0,
            "max_tokens": max_tokens, "stream": True}  # fmt: skip
    started = time.perf_counter()
    first = 0.0
    usage: dict = {}
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body, timeout=300) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content") and not first:
                first = time.perf_counter() - started
            usage = chunk.get("usage") or usage
    return usage["completion_tokens"], first, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    log = Path(tempfile.mkdtemp()) / "server.log"

    cold = []
    for _ in range(args.runs):
        server = start_server(log)
        cold.append(server.cold_start_seconds)
        server.stop()
    print(
        f"cold start (process start to first answer of /v1/models), {args.runs} runs: "
        f"median {statistics.median(cold):.2f}s, min {min(cold):.2f}s, max {max(cold):.2f}s"
    )

    server = start_server(log)
    try:
        print(f"n_ctx {server.n_ctx}, RSS after start {rss_mb(server.process.pid):.0f} MB")
        chat(server, "Hello", 8)  # warm-up
        rates = []
        for _ in range(3):
            answer, seconds = chat(server, STORY, 256)
            rates.append(answer["usage"]["completion_tokens"] / seconds)
        print(
            f"non-streamed: {statistics.median(rates):.0f} completion tokens/s (median of 3, 256 max, "
            f"prompt {answer['usage']['prompt_tokens']} tokens)"
        )
        tokens, first, seconds = stream(server, STORY, 256)
        print(f"streamed: {tokens / seconds:.0f} tokens/s, first token after {first * 1000:.0f} ms")
        long_prompt = " ".join(["The lighthouse keeper watched the sea every night."] * 150) + " Summarise."
        answer, seconds = chat(server, long_prompt, 1)
        prompt_tokens = answer["usage"]["prompt_tokens"]
        print(f"prompt processing: {prompt_tokens} tokens in {seconds:.2f}s = {prompt_tokens / seconds:.0f} tokens/s")
        print(f"RSS after the runs {rss_mb(server.process.pid):.0f} MB")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
