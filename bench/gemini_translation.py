"""What translating between Gemini's API and chat completions costs per request and per stream event.

    .venv/bin/python bench/gemini_translation.py [--rounds N]

Pure functions (gateway.translate_gemini), timed on this machine's CPU: a gemini-cli-sized request (a
long system instruction, a conversation with a function call and its response, eight function
declarations) both ways, an answer both ways, and one stream event each way; and what Gemini's
passthrough does with each upstream event (gateway.verbatim: parsed, modelVersion's value replaced in
the text, the text sent) beside parsing and re-encoding it. Prints microseconds per call (the best of
five runs); nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}}}
REQUEST: dict[str, Any] = {
    "model": "acme/chat-small",
    "systemInstruction": {"parts": [{"text": "You are a careful software engineering agent. " * 200}]},
    "contents": [
        {"role": "user", "parts": [{"text": "List the files and read the README."}]},
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "ls", "args": {"path": "."}}, "thoughtSignature": "c2ln"}],
        },
        {"role": "user", "parts": [{"functionResponse": {"name": "ls", "response": {"output": "README.md\nsrc\n"}}}]},
    ],
    "tools": [
        {
            "functionDeclarations": [
                {"name": f"tool_{n}", "description": "A tool.", "parametersJsonSchema": SCHEMA} for n in range(8)
            ]
        }
    ],
    "generationConfig": {"temperature": 1, "topP": 0.95, "topK": 64, "thinkingConfig": {"includeThoughts": True}},
}
COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Done. " * 100}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 2000, "completion_tokens": 120, "total_tokens": 2120},
}
ANSWER: dict[str, Any] = {
    "candidates": [{"content": {"parts": [{"text": "Done. " * 100}], "role": "model"}, "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 2000, "candidatesTokenCount": 120, "totalTokenCount": 2120},
}
CHUNK: dict[str, Any] = {"id": "c", "choices": [{"index": 0, "delta": {"content": "word "}, "finish_reason": None}]}
EVENT: dict[str, Any] = {"candidates": [{"content": {"parts": [{"text": "word "}], "role": "model"}, "index": 0}]}
UPSTREAM_EVENT = json.dumps({**EVENT, "usageMetadata": {"promptTokenCount": 2000}, "modelVersion": "gemini-2.5-flash"})


def verbatim_event() -> bytes:
    from gateway.verbatim import Verbatim

    event = Verbatim.of(UPSTREAM_EVENT)
    event.replace("modelVersion", "acme/chat")
    return event.text.encode()


def reencoded_event() -> bytes:
    from gateway.wire import encode_json

    event = json.loads(UPSTREAM_EVENT)
    event["modelVersion"] = "acme/chat"
    return encode_json(event)


def main() -> None:
    import django

    django.setup()
    from gateway.chat_completions.protocol import parse_chat_request
    from gateway.gemini_api.protocol import parse_generate_request
    from gateway.translate_gemini import (
        ChatToGeminiStream,
        GeminiToChatStream,
        chat_completion_to_gemini,
        chat_to_gemini,
        gemini_to_chat,
        gemini_to_chat_completion,
    )

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds
    chat = parse_chat_request(gemini_to_chat(parse_generate_request(REQUEST)))
    to_gemini, to_chat = ChatToGeminiStream(model="m"), GeminiToChatStream()
    cases = {
        "parse + gemini_to_chat (request, gemini-cli sized)": lambda: gemini_to_chat(parse_generate_request(REQUEST)),
        "chat_to_gemini (the same request, parsed)": lambda: chat_to_gemini(chat, max_tokens=1000),
        "chat_completion_to_gemini (answer)": lambda: chat_completion_to_gemini(COMPLETION, "m"),
        "gemini_to_chat_completion (answer)": lambda: gemini_to_chat_completion(ANSWER),
        "ChatToGeminiStream.feed (one chunk)": lambda: to_gemini.feed(CHUNK),
        "GeminiToChatStream.feed (one event)": lambda: to_chat.feed(EVENT),
        "passthrough event, as it came (Verbatim)": verbatim_event,
        "passthrough event, parsed and re-encoded (before)": reencoded_event,
    }
    for name, run in cases.items():
        best = min(timeit.repeat(run, number=rounds, repeat=5)) / rounds
        print(f"{name:<55} {best * 1e6:9.1f} µs")


if __name__ == "__main__":
    main()
