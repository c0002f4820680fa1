"""POST /v1/completions: models of kind `text`, with the auth, limits, routing and ledger of chat.

The request is OpenAI's CreateCompletionRequest (gateway.protocol_completions); it goes to the
deployment's `/completions` as the client sent it but for the upstream's model name, our end user
(hashed), routing fields (dropped) and the output cap, always sent as `max_tokens` (the one name
the Completions API has). Streams are relayed by gateway.streams, as chat's are.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

from catalogue.models import Deployment, LanguageModel
from gateway import routing, upstream
from gateway.auth import Caller, get_model
from gateway.bodies import encode, forwarded_body, set_stream
from gateway.calls import Call, check_kind, error_code_of, reserve, settled
from gateway.errors import GatewayError
from gateway.protocol_completions import CreateCompletionRequest, parse_completion_request
from gateway.streams import ChunkRelay, relay_stream
from usage import limits
from usage.tokens import Usage, estimate_input_tokens, reported_usage

PATH = "/completions"


async def _prepare(
    caller: Caller, body: dict[str, Any], stream: bool, response_headers: dict[str, str] | None
) -> tuple[Call, CreateCompletionRequest, LanguageModel, int]:
    """Validate, find the model, reserve limits; failures after auth are ledgered and raised."""
    call = Call(caller, body, stream=stream, public_id=str(body.get("model", "")))
    try:
        request = parse_completion_request(body)
        call.public_id = request.model
        model = await get_model(request.model, caller)
        call.model = model
        check_kind(model, LanguageModel.Kind.TEXT)
        cap = request.output_cap(model.max_output_tokens)
        call.prompt_estimate = estimate_input_tokens(request.prompts())
        await reserve(call, model, call.prompt_estimate, cap * request.choices())
    except GatewayError as exc:
        await call.finish(Usage(), exc.status, error_code_of(exc))
        raise
    if response_headers is not None:
        response_headers.update(limits.headers(call.reservation))
    call.attempts = routing.Attempts(model)
    return call, request, model, cap


def _body(call: Call, deployment: Deployment, target: upstream.Target, cap: int, stream: bool) -> bytes:
    if target.anthropic:
        raise GatewayError(400, "Anthropic's API has no text completions.", param="model", code="model_not_supported")
    sent = forwarded_body(call.body, deployment, call.caller)
    sent.pop("max_completion_tokens", None)
    sent["max_tokens"] = cap
    set_stream(sent, stream)
    return encode(sent)


def _text_bytes(choices: Any) -> int:
    return sum(len(str(choice.get("text") or "").encode()) for choice in choices or () if isinstance(choice, dict))


async def create_text_completion(
    caller: Caller, body: dict[str, Any], *, response_headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """A non-streaming text completion, answered with our public model id."""
    call, request, _model, cap = await _prepare(caller, body, False, response_headers)
    attempts = call.attempts
    assert attempts is not None

    async def attempt(deployment: Deployment) -> dict[str, Any]:
        target = attempts.target
        payload = await upstream.post_json(target, PATH, _body(call, deployment, target, cap, False))
        if not isinstance(payload.get("choices"), list):
            raise upstream.bad_response(target, "an answer without choices")
        return payload

    async with settled(call) as outcome:
        payload = await routing.first(attempts, attempt)
        payload["model"] = request.model
        payload["object"] = "text_completion"
        payload.setdefault("id", f"cmpl-{uuid.uuid4().hex}")
        if not isinstance(payload.get("created"), int):
            payload["created"] = int(time.time())
        for position, choice in enumerate(payload["choices"]):
            if isinstance(choice, dict):
                choice.setdefault("index", position)
                choice.setdefault("logprobs", None)
                if choice.get("finish_reason") is None:
                    choice["finish_reason"] = "stop"
        reported = reported_usage(payload.get("usage"))
        if reported is None:
            reported = call.estimated(_text_bytes(payload["choices"]))
            payload["usage"] = reported.as_dict()
        outcome.succeeded(reported)
        return payload


@dataclass
class _TextRelay(ChunkRelay):
    """A text completion's stream events as our client's chunks (gateway.streams.Relay)."""

    OBJECT: ClassVar[str] = "text_completion"
    ID_PREFIX: ClassVar[str] = "cmpl-"

    def chunks(self, data: str) -> list[dict[str, Any]]:
        chunk = self.parse(data)
        choices = self.choices_of(chunk)
        if not choices:
            return []
        for choice in choices:
            choice.setdefault("logprobs", None)
            choice.setdefault("finish_reason", None)
        self.completion_bytes += _text_bytes(choices)
        return [chunk]


async def stream_text_completion(
    caller: Caller,
    body: dict[str, Any],
    *,
    keepalive: float | None,
    response_headers: dict[str, str] | None = None,
) -> AsyncIterator[dict[str, Any] | None]:
    """A streamed text completion's chunks (None for a keep-alive); GatewayError before the first."""
    call, request, _model, cap = await _prepare(caller, body, True, response_headers)

    def attempt(deployment: Deployment, target: upstream.Target) -> tuple[_TextRelay, str, bytes, dict[str, str]]:
        relay = _TextRelay(request.model, request.wants_usage_chunk(), target)
        return relay, PATH, _body(call, deployment, target, cap, True), {}

    # Closed at once with this generator, so the upstream request is closed at once too.
    async with contextlib.aclosing(relay_stream(call, attempt, keepalive)) as chunks:
        async for chunk in chunks:
            yield chunk
