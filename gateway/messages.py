"""Anthropic's Messages API in front of the gateway: /v1/messages over the chat-completions pipeline.

    message = await create_message(caller, body)                    # non-streaming
    async for event in stream_message(caller, body, keepalive=15): ...   # Anthropic's stream events
    counted = await count_tokens(caller, body)                      # {"input_tokens": n}

A Messages request is translated to a chat request (gateway.translate_anthropic) and run through
gateway.services, so it gets the same key scope, limits, budget, routing and ledger row as a chat
completion; its answer or stream is translated back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gateway import services
from gateway.auth import Caller, get_model
from gateway.errors import GatewayError
from gateway.protocol_anthropic import parse_count_tokens_request, parse_messages_request
from gateway.translate_anthropic import (
    ChatToMessagesStream,
    anthropic_error,
    chat_completion_to_message,
    messages_to_chat,
)
from usage.tokens import estimate_prompt_tokens

# Statuses of the errors a stream yields after it began (it yields them in OpenAI's shape, no status).
_STREAM_ERROR_STATUSES = {"rate_limit_exceeded": 429, "insufficient_quota": 429}
_STREAM_ERROR_CODES = {"upstream_overloaded": 503, "upstream_timeout": 504, "no_deployment_available": 503}


def _chat_body(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    request = parse_messages_request(body)
    return request.model, messages_to_chat(request)


async def create_message(
    caller: Caller,
    body: dict[str, Any],
    *,
    beta: str | None = None,
    response_headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A non-streaming Message, answered with the client's model id.

    A deployment speaking Anthropic's API gets the client's request as it is (with its `anthropic-beta`),
    and the client its Message as it came; others get it translated.
    """
    model, chat = _chat_body(body)
    chat.pop("stream", None)
    chat.pop("stream_options", None)
    native = services.Native(body, beta)
    completion = await services.create_completion(caller, chat, response_headers=response_headers, native=native)
    message = native.answer if native.answer is not None else chat_completion_to_message(completion)
    message["model"] = model
    return message


def _stream_error(chunk: dict[str, Any]) -> GatewayError:
    error = chunk.get("error")
    error = error if isinstance(error, dict) else {}
    kind, code = str(error.get("type") or ""), str(error.get("code") or "")
    status = _STREAM_ERROR_STATUSES.get(kind) or _STREAM_ERROR_CODES.get(code) or 500
    return GatewayError(status, str(error.get("message") or "The upstream failed."), type=kind, code=code or None)


async def stream_message(
    caller: Caller,
    body: dict[str, Any],
    *,
    keepalive: float | None,
    beta: str | None = None,
    response_headers: dict[str, str] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Anthropic's stream events for a Messages request (`ping` whenever the upstream was silent).

    Raises GatewayError before the first event; a failure after it is Anthropic's `error` event,
    ending the stream. Closing this generator closes the upstream request. A deployment speaking
    Anthropic's API streams the client's request as it is, and its events go out as they came.
    """
    model, chat = _chat_body(body)
    chat["stream"] = True
    chat["stream_options"] = {"include_usage": True}  # message_delta carries the usage
    translator = ChatToMessagesStream(model=model, input_tokens=estimate_prompt_tokens(chat))
    native = False
    if keepalive is None:
        chunks: AsyncIterator[dict[str, Any] | None] = services.stream_completion(caller, chat)
    else:
        chunks = services.stream_events(
            caller, chat, keepalive=keepalive, response_headers=response_headers, native=services.Native(body, beta)
        )
    try:
        async for chunk in chunks:
            if chunk is None:
                # Not the translator's message_start yet: the upstream may be Anthropic, which sends its own.
                events = [{"type": "ping"}]
            elif "native" in chunk:
                native = True
                events = [_our_model(chunk["native"], model)]
            elif "error" in chunk and not chunk.get("choices"):
                error = _stream_error(chunk)
                events = [anthropic_error(error)[1]] if native else translator.fail(error)
            elif native:
                continue  # the chat pipeline's usage chunk: the upstream's message_delta said it
            else:
                events = translator.feed(chunk)
            for event in events:
                yield event
        if not native:
            for event in translator.finish():
                yield event
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


def _our_model(event: dict[str, Any], model: str) -> dict[str, Any]:
    message = event.get("message")
    if event.get("type") == "message_start" and isinstance(message, dict):
        message["model"] = model
    return event


async def count_tokens(caller: Caller, body: dict[str, Any]) -> dict[str, int]:
    """The prompt's input tokens, by the same estimate limits and budgets reserve with.

    The model must be one the key may call: counting tells as much about a model as calling it.
    """
    parse_count_tokens_request(body)  # errors name the params of this endpoint
    model, chat = _chat_body({**body, "max_tokens": 1})
    await get_model(model, caller)
    return {"input_tokens": estimate_prompt_tokens(chat)}
