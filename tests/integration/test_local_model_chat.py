"""Chats with the real bundled model: through /v1 with the `openai` SDK, and through the browser's WebSocket.

The model is SmolLM2-135M under llama.cpp, so the answers are real text and the token counts are the
model's own, not estimates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from django.conf import settings
from django.test import Client
from openai import OpenAI
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import LanguageModel
from chatsite.local_model import MODEL_ID
from conversations.models import Message
from conversations.services import create_conversation
from tests.live_server import LiveServer
from usage.models import UsageRecord

# Greedy decoding (temperature 0) makes the answer repeatable; SmolLM2-135M gets this one right.
QUESTION = "What is the capital of France? Answer with one word."
T = TypeVar("T")


def eventually(fetch: Callable[[], T | None], what: str, seconds: float = 30.0) -> T:
    """The usage ledger is written just after the answer; wait (bounded) for it instead of racing it."""
    deadline = time.monotonic() + seconds
    while (value := fetch()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not appear within {seconds:.0f}s")
        time.sleep(0.1)
    return value


def sdk(live_server: LiveServer, user: User) -> tuple[OpenAI, Any]:
    key, secret = create_key(user, "integration")
    return OpenAI(base_url=f"{live_server.url}/v1", api_key=secret, max_retries=0, timeout=120), key


def test_the_openai_sdk_gets_a_real_answer_with_real_usage(
    local_model: LanguageModel, live_server: LiveServer, alice: User
) -> None:
    client, key = sdk(live_server, alice)

    completion = client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=32
    )

    assert completion.model == MODEL_ID
    answer = completion.choices[0].message.content or ""
    assert "paris" in answer.lower(), answer
    assert completion.choices[0].finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 10  # the question in SmolLM2's chat template
    assert 0 < usage.completion_tokens <= 32
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    record = eventually(lambda: UsageRecord.objects.filter(api_key=key, status=200).first(), "the settled usage record")
    assert (record.prompt_tokens, record.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)
    assert not record.usage_estimated
    assert not record.stream
    assert record.status == 200
    assert record.model_public_id == MODEL_ID


def test_a_streamed_answer_arrives_in_pieces_and_ends_with_real_usage(
    local_model: LanguageModel, live_server: LiveServer, alice: User
) -> None:
    client, key = sdk(live_server, alice)

    stream = client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": QUESTION}],
        temperature=0,
        max_tokens=32,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    pieces = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    answer = "".join(pieces)
    assert len(pieces) > 1, "the answer came in one piece, not streamed"
    assert "paris" in answer.lower(), answer
    assert all(chunk.model == MODEL_ID for chunk in chunks)
    final = chunks[-1]
    assert final.choices == []
    assert final.usage is not None
    assert final.usage.prompt_tokens > 10
    assert 0 < final.usage.completion_tokens <= 32
    record = eventually(lambda: UsageRecord.objects.filter(api_key=key, status=200).first(), "the settled usage record")
    assert (record.prompt_tokens, record.completion_tokens) == (
        final.usage.prompt_tokens,
        final.usage.completion_tokens,
    )
    assert not record.usage_estimated
    assert record.stream


def test_a_browser_chat_over_the_websocket_streams_a_real_reply_and_charges_the_user(
    local_model: LanguageModel, live_server: LiveServer, alice: User
) -> None:
    browser = Client()
    browser.force_login(alice)
    session = browser.cookies[settings.SESSION_COOKIE_NAME].value
    conversation = create_conversation(alice, model_id=MODEL_ID)
    frames: list[dict[str, Any]] = []
    reply: dict[str, Any] | None = None

    try:
        socket = connect(
            f"{live_server.ws_url}/ws/conversations/{conversation.pk}/",
            additional_headers={"Origin": live_server.url, "Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"},
            open_timeout=30,
        )
    except InvalidStatus as exc:
        pytest.fail(f"the socket was refused ({exc}); the server's log ends:\n{live_server.log()[-3000:]}")
    with socket:
        socket.send(json.dumps({"type": "send", "content": QUESTION}))
        deadline = time.monotonic() + 120
        while reply is None:
            frame = json.loads(socket.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            frames.append(frame)
            if frame["type"] == "error":
                pytest.fail(f"the chat answered with an error: {frame}")
            message = frame.get("message") or {}
            if frame["type"] == "message" and message.get("role") == "assistant" and message["status"] != "streaming":
                reply = message

    assert reply["status"] == "complete", reply
    assert reply["content"].strip(), reply
    assert reply["model"] == MODEL_ID
    assert any(frame["type"] == "delta" and frame["text"] for frame in frames), "the reply was not streamed"
    stored = Message.objects.get(pk=reply["id"])
    assert stored.content == reply["content"]
    assert stored.prompt_tokens and stored.prompt_tokens > 10
    assert stored.completion_tokens and stored.completion_tokens > 0
    record = eventually(
        lambda: UsageRecord.objects.filter(user=alice, source=UsageRecord.Source.CHAT, status=200).first(),
        "the settled usage record",
    )
    assert (record.prompt_tokens, record.completion_tokens) == (stored.prompt_tokens, stored.completion_tokens)
    assert not record.usage_estimated
    assert record.api_key is None
    assert record.model_public_id == MODEL_ID


def test_max_completion_tokens_caps_the_real_models_reply(
    local_model: LanguageModel, live_server: LiveServer, alice: User
) -> None:
    # llama.cpp's server knows only `max_tokens`: the gateway must send the cap under that name.
    client, _key = sdk(live_server, alice)

    completion = client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
        temperature=0,
        max_completion_tokens=10,
    )

    assert completion.usage is not None
    assert completion.usage.completion_tokens <= 10
    assert completion.choices[0].finish_reason == "length"
