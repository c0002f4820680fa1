"""What the Responses API's tool handling costs a request on the hot path, in this process (no server).

    .venv/bin/python bench/responses_tools.py [--iterations 20000]

Three bodies as Codex CLI 0.171 shapes them: a plain one (one function tool), Codex's first request (eight
functions, a `namespace` of five, the hosted `web_search`), and the same without the namespace. Printed per
body: parsing plus translating it to chat completions (gateway.responses_api.protocol, translate_responses),
and the check every Responses request pays to learn whether it offers hosted tools (asks_hosted_tools), in
microseconds, medians of five runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

import django  # noqa: E402

django.setup()

from gateway.responses_api.hosted import asks_hosted_tools  # noqa: E402
from gateway.responses_api.protocol import parse_response_request  # noqa: E402
from gateway.translate_responses import chat_request  # noqa: E402

SCHEMA = {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}


def function(name: str) -> dict[str, Any]:
    return {"type": "function", "name": name, "description": f"The {name} tool", "strict": False, "parameters": SCHEMA}


NAMESPACE = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Tools for spawning and managing sub-agents.",
    "tools": [function(n) for n in ("close_agent", "resume_agent", "send_input", "spawn_agent", "wait_agent")],
}
FUNCTIONS = [function(f"tool_{n}") for n in range(8)]
INPUT = [{"role": "developer", "content": "Be careful."}, {"role": "user", "content": "Run the tests."}]
BASE = {"model": "m", "input": INPUT, "stream": True, "store": False, "prompt_cache_key": "s1"}
BODIES = {
    "plain (1 function)": {**BASE, "tools": FUNCTIONS[:1]},
    "codex without namespace (8 functions)": {**BASE, "tools": FUNCTIONS},
    "codex (8 functions, a namespace of 5, web_search)": {
        **BASE,
        "tools": [*FUNCTIONS[:4], NAMESPACE, *FUNCTIONS[4:], {"type": "web_search", "external_web_access": False}],
        "include": ["reasoning.encrypted_content"],
        "client_metadata": {"session_id": "s1"},
    },
}


def per_call(work: Callable[[], Any], iterations: int) -> float:
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(iterations):
            work()
        runs.append((time.perf_counter() - started) / iterations * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=20000)
    args = parser.parse_args()
    print(f"{'body':52} {'parse + translate':>18} {'asks_hosted_tools':>18}")
    for name, body in BODIES.items():

        def translate(body: dict[str, Any] = body) -> None:
            chat_request(parse_response_request(body), hosted=True)

        def check(body: dict[str, Any] = body) -> None:
            asks_hosted_tools(body)

        translated, checked = per_call(translate, args.iterations // 10), per_call(check, args.iterations)
        print(f"{name:52} {translated:15.1f} µs {checked:15.2f} µs")


if __name__ == "__main__":
    main()
