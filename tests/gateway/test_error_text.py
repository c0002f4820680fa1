"""Upstream error text reaching clients is cleaned of stack traces and file paths (gateway.error_text,
applied by gateway.upstream.scrub to every upstream message a client gets)."""

from __future__ import annotations

import json

import openai
import pytest

from gateway.error_text import clean
from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway.conftest import MODEL, Gateway

LLAMA_CPP_TRACE = """Traceback (most recent call last):
  File "/home/ci/.venv/lib/python3.11/site-packages/llama_cpp/server/errors.py", line 171, in custom_route_handler
    response = await original_route_handler(request)
               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/home/ci/.venv/lib/python3.11/site-packages/llama_cpp/server/app.py", line 513, in create_chat_completion
    raise ValueError("json_schema is not supported")
ValueError: response_format json_schema is not supported by this chat handler"""


def test_a_python_traceback_leaves_only_its_last_line() -> None:
    assert clean(LLAMA_CPP_TRACE) == "ValueError: response_format json_schema is not supported by this chat handler"


def test_chained_tracebacks_keep_each_exception_line() -> None:
    text = (
        "Traceback (most recent call last):\n  File \"/app/a.py\", line 1, in f\n    g()\nKeyError: 'x'\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
        'Traceback (most recent call last):\n  File "/app/b.py", line 2, in h\n    raise\nRuntimeError: boom'
    )
    assert clean(text) == "KeyError: 'x'\n\nRuntimeError: boom"


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("Failed to load /home/ci/models/smollm2.gguf: bad magic", "Failed to load <path>: bad magic"),
        (
            "error in /usr/local/lib/python3.11/site-packages/llama_cpp/server/app.py line 3",
            "error in <path> line 3",
        ),
        ("see /srv/app/node_modules/x/index.js", "see <path>"),
        ("open C:\\Users\\ci\\model.bin failed", "open <path> failed"),
        (
            "TypeError: x is undefined\n    at handler (/app/server.js:10:5)\n    at next (node:internal/x:1:2)",
            "TypeError: x is undefined",
        ),
        ("panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/build/main.go:12 +0x1d", "panic: boom\n\nmain.main()"),
    ],
)
def test_paths_and_frames_of_other_servers_are_removed(text: str, cleaned: str) -> None:
    assert clean(text) == cleaned


@pytest.mark.parametrize(
    "text",
    [
        "Invalid value for 'messages[0].role': 'wizard'.",
        "The model 'acme/chat-small' does not exist or you do not have access to it.",
        "POST /v1/chat/completions is not supported; use https://api.example.com/v1/responses",
        "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.",
        "Rate limit reached for requests: 3/min. Retry after 20s.",
    ],
)
def test_ordinary_api_messages_pass_unchanged(text: str) -> None:
    assert clean(text) == text


@pytest.mark.usefixtures("one_attempt")
@pytest.mark.parametrize("status", [400, 500])
def test_it_answers_an_upstream_traceback_with_its_last_line_only(
    gateway: Gateway, fake_upstream: FakeUpstream, status: int
) -> None:
    fake_upstream.queue(Reply(status=status, error_message=LLAMA_CPP_TRACE))
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    text = caught.value.response.text
    assert "response_format json_schema is not supported by this chat handler" in text
    assert "Traceback" not in text and "site-packages" not in text and "/home/ci" not in text


def test_it_answers_an_error_event_in_a_stream_without_paths(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    message = "model crashed: No such file: /home/ci/models/llama.gguf"
    fake_upstream.queue(Reply(content="a b c d", fail_after_chunks=2, error_message=message))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    response = gateway.http.post(gateway.base_url + "/chat/completions", json=body, headers=gateway.headers())
    error = json.loads(response.text.split("\n\n")[-3].removeprefix("data: "))
    assert error["error"]["message"].endswith("model crashed: No such file: <path>")
    assert "/home/ci" not in response.text
