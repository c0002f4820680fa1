"""Streams: SSE framing on the wire, errors after the first byte, keep-alives, and cancellation.

Framing is checked with raw HTTP through the ASGI app in process, disconnects against a live server
process (the wire itself); keep-alive, aclose and task cancellation through the serving core, as the
chat's generations use them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from catalogue.models import Provider
from gateway.auth import Caller, find_usable_model
from gateway.chat_completions.inprocess import ChatTurn, Finished, Said, reply
from gateway.chat_completions.serving import ChatServing
from gateway.errors import GatewayError
from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway.conftest import MODEL, Gateway, wait_for_usage
from tests.openai_schema import validate
from usage.ledger import flush_usage
from usage.models import UsageRecord
from usage.tokens import Usage

BODY: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}


def events(text: str) -> list[str]:
    """The data of each SSE event, in order; comments are kept as they are."""
    assert text.endswith("\n\n"), "every event ends with a blank line"
    return [block.removeprefix("data: ") for block in text[:-2].split("\n\n")]


def test_a_stream_is_sse_framed_and_ends_with_done(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="alpha beta gamma"))
    response = gateway.http.post(gateway.base_url + "/chat/completions", json=BODY, headers=gateway.headers())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.text.startswith("data: ")
    data = events(response.text)
    assert data[-1] == "[DONE]"
    for payload in data[:-1]:
        chunk = json.loads(payload)
        validate(chunk, "CreateChatCompletionStreamResponse")
        assert chunk["model"] == MODEL


def test_an_upstream_error_after_the_first_byte_is_one_error_event_then_done(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="a b c d", fail_after_chunks=2, error_message="model crashed"))
    response = gateway.http.post(gateway.base_url + "/chat/completions", json=BODY, headers=gateway.headers())
    assert response.status_code == 200
    data = events(response.text)
    assert data[-1] == "[DONE]"
    error = json.loads(data[-2])
    validate(error, "ErrorResponse")
    assert "model crashed" in error["error"]["message"]
    assert all("error" not in json.loads(d) for d in data[:-2])


def test_a_dropped_upstream_connection_mid_stream_is_an_error_event(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="a b c d", drop_after_chunks=1))
    response = gateway.http.post(gateway.base_url + "/chat/completions", json=BODY, headers=gateway.headers())
    data = events(response.text)
    assert data[-1] == "[DONE]"
    validate(json.loads(data[-2]), "ErrorResponse")
    rows = wait_for_usage(1)
    assert rows[0].status == 502 and rows[0].stream


def test_a_client_that_disconnects_makes_the_gateway_close_the_upstream_request(
    live_gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    gateway = live_gateway
    fake_upstream.queue(Reply(content=" ".join(["word"] * 200), delay=0.05))
    with (
        httpx.Client(timeout=60) as client,  # a loaded machine may take seconds to the first chunk
        client.stream("POST", gateway.base_url + "/chat/completions", json=BODY, headers=gateway.headers()) as stream,
    ):
        for line in stream.iter_lines():
            if line.startswith("data: {"):
                break  # got a chunk; leave with the upstream still talking
    assert fake_upstream.wait_for_requests(1)
    assert fake_upstream.last.disconnected.wait(timeout=10), "the upstream request stayed open"
    rows = wait_for_usage(1)
    assert rows[0].status == 499 and rows[0].error_code == "client_disconnected"


# --- in-process, as the browser chat uses the services ------------------------------------------


def chat_body(**extra: Any) -> dict[str, Any]:
    return {**BODY, "stream_options": {"include_usage": True}, **extra}


def _rows() -> list[UsageRecord]:
    try:
        return list(UsageRecord.objects.all())
    finally:
        connection.close()  # the test database can't be dropped while this thread holds one


async def ledger() -> list[UsageRecord]:
    await flush_usage()
    return await sync_to_async(_rows)()


async def test_the_consumer_gets_chunks_and_the_usage_chunk(chat: Caller, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="x y z"))
    chunks = [chunk async for chunk in ChatServing(chat, chat_body(), stream=True).stream(None)]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1]) == "x y z"
    [row] = await ledger()
    assert row.source == "chat" and row.api_key_id is None and row.completion_tokens == 3 and row.status == 200


async def test_it_gives_the_chat_typed_events_and_reserves_the_chats_estimate(
    chat: Caller, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="x y z", usage=False, reasoning="hmm"))
    model = await sync_to_async(find_usable_model)(MODEL)
    turn = ChatTurn(chat.user, MODEL, model, [{"role": "user", "content": "hi"}], prompt_tokens=42)
    events = [event async for event in reply(turn)]
    assert "".join(e.text for e in events if isinstance(e, Said)) == "x y z"
    assert "".join(e.reasoning for e in events if isinstance(e, Said)) == "hmm"
    assert events[-1] == Finished(Usage(42, 3, estimated=True)), "the chat's estimate, not the gateway's own"
    [row] = await ledger()
    assert row.source == "chat" and row.prompt_tokens == 42 and row.usage_estimated and row.status == 200


async def test_it_fails_a_chat_reply_whose_model_may_no_longer_serve(chat: Caller, fake_upstream: FakeUpstream) -> None:
    turn = ChatTurn(chat.user, "acme/gone", None, [{"role": "user", "content": "hi"}], prompt_tokens=5)
    with pytest.raises(GatewayError) as caught:
        [event async for event in reply(turn)]
    assert caught.value.message == "The model 'acme/gone' does not exist or you do not have access to it."
    assert fake_upstream.requests == []
    [row] = await ledger()
    assert row.status == 404 and row.error_code == "model_not_found"


async def test_a_silent_upstream_gets_keep_alives(chat: Caller, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="slow reply", delay=0.6))
    seen = [event async for event in ChatServing(chat, chat_body(), stream=True).stream(0.15)]
    assert None in seen, "no keep-alive while the upstream was silent"
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in seen if e and e["choices"]) == "slow reply"
    [row] = await ledger()  # also keeps its insert from racing the test database's flush
    assert row.status == 200


async def test_closing_the_generator_closes_the_upstream_request(chat: Caller, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content=" ".join(["word"] * 100), delay=0.05))
    async with contextlib.aclosing(ChatServing(chat, chat_body(), stream=True).stream(None)) as stream:
        async for _chunk in stream:
            break
    assert await asyncio.to_thread(fake_upstream.last.disconnected.wait, 10)
    [row] = await ledger()
    assert row.status == 499 and row.usage_estimated


async def test_cancelling_the_consuming_task_closes_the_upstream_request(
    chat: Caller, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content=" ".join(["word"] * 100), delay=0.05))
    started = asyncio.Event()

    async def consume() -> None:
        async for _chunk in ChatServing(chat, chat_body(), stream=True).stream(None):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(fake_upstream.last.disconnected.wait, 10)
    [row] = await ledger()
    assert row.status == 499


@pytest.mark.usefixtures("one_attempt")
async def test_an_error_before_the_first_chunk_is_raised(chat: Caller, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(status=500))
    with pytest.raises(GatewayError) as caught:
        async for _chunk in ChatServing(chat, chat_body(), stream=True).stream(None):
            pass
    assert caught.value.status == 502
    [row] = await ledger()
    assert row.status == 502


async def test_an_error_after_the_first_chunk_is_yielded_once(chat: Caller, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="a b c", fail_after_chunks=1))
    chunks = [chunk async for chunk in ChatServing(chat, chat_body(), stream=True).stream(None)]
    assert "error" in chunks[-1] and all("error" not in c for c in chunks[:-1])
    # Waiting for the row also keeps its insert from racing the test database's flush.
    [row] = await ledger()
    assert row.status == 502


@contextlib.asynccontextmanager
async def raw_upstream(*parts: bytes | float) -> AsyncIterator[str]:
    """A loopback HTTP server answering each request with a 200 event stream made of `parts`.

    Bytes are sent as they are, numbers are pauses in seconds; then the connection closes.
    For shapes of stream the scriptable fake upstream has no words for.
    """

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
            for part in parts:
                if isinstance(part, bytes):
                    writer.write(part)
                    await writer.drain()
                else:
                    await asyncio.sleep(part)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.close()
        await server.wait_closed()


def _point_provider_at(url: str) -> None:
    try:
        provider = Provider.objects.get(name="fake")
        provider.base_url = url
        provider.save()  # through the ORM: this process's rights cache forgets the old address at once
    finally:
        connection.close()


GOOD_CHUNK = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
)


async def test_a_failure_after_a_keep_alive_is_an_error_event_not_a_raise(chat: Caller) -> None:
    # The view answers a keep-alive with a 200: an error raised after it would end the stream
    # without an error event or [DONE].
    error = b'data: {"error":{"message":"the prompt is too long","type":"server_error"}}\n\n'
    async with raw_upstream(0.5, error) as url:
        await sync_to_async(_point_provider_at)(url)
        seen = [event async for event in ChatServing(chat, chat_body(), stream=True).stream(0.1)]
    assert seen[0] is None
    assert seen[-1] is not None and "the prompt is too long" in seen[-1]["error"]["message"]
    [row] = await ledger()
    assert row.status == 502


async def test_an_empty_stream_after_a_keep_alive_is_an_error_event(chat: Caller) -> None:
    async with raw_upstream(0.5, b"data: [DONE]\n\n") as url:
        await sync_to_async(_point_provider_at)(url)
        seen = [event async for event in ChatServing(chat, chat_body(), stream=True).stream(0.1)]
    assert seen[0] is None
    assert seen[-1] is not None and seen[-1]["error"]["code"] == "upstream_bad_response"
    await ledger()


@pytest.mark.parametrize("choices", [b'{"0":{"delta":{"content":"x"}}}', b'"x"', b"[1]"])
@pytest.mark.usefixtures("one_attempt")
async def test_a_stream_event_without_a_list_of_choices_is_an_upstream_error(chat: Caller, choices: bytes) -> None:
    bad = b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"choices":' + choices + b"}\n\n"
    async with raw_upstream(GOOD_CHUNK, bad) as url:
        await sync_to_async(_point_provider_at)(url)
        chunks = [chunk async for chunk in ChatServing(chat, chat_body(), stream=True).stream(None)]
    async with raw_upstream(bad) as url:
        await sync_to_async(_point_provider_at)(url)
        with pytest.raises(GatewayError) as caught:  # before the first chunk: raised, as a 502
            async for _chunk in ChatServing(chat, chat_body(), stream=True).stream(None):
                pass
    assert chunks[0]["choices"][0]["delta"]["content"] == "hi"
    assert chunks[-1]["error"]["code"] == "upstream_bad_response"
    assert caught.value.status == 502
    rows = await ledger()
    assert sorted(row.status for row in rows) == [502, 502]
