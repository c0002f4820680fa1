"""Gemini's generateContent and streamGenerateContent over the serving core, and its countTokens.

A deployment speaking Gemini's API gets the client's request as it is (but our `model`, which came
from the path), and the client Google's answer or stream events as they came, but `modelVersion`,
which names our model: safety settings, cached content, thought signatures, fields we do not model
survive, nothing is translated. Any other deployment gets the request translated to chat completions
(gateway.translate_gemini), served as a chat request (gateway.chat_completions.serving), and its
answer or chunks translated back. Either way a failure after the stream began is one
`{"error": {...}}` event in Google's shape.

Capability checks, the output cap and the token estimate read the Gemini request itself. It is
translated to chat only when the model has a deployment speaking another API, once and before
anything is reserved, so what cannot be translated is a 400 then, not a failed attempt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from catalogue.models import Deployment, Provider
from gateway import upstream
from gateway.auth import Caller, get_model
from gateway.chat_completions.serving import ChatServing, TranslatedRelay, check_model_takes
from gateway.errors import GatewayError
from gateway.gemini_api.estimate import estimate_gemini_tokens
from gateway.gemini_api.protocol import (
    GenerateContentRequest,
    parse_count_tokens_request,
    parse_generate_request,
)
from gateway.serving.base import Call, Opened
from gateway.serving.bodies import encode
from gateway.translate_gemini import (
    ChatToGeminiStream,
    chat_completion_to_gemini,
    gemini_to_chat,
    google_error,
    usage_to_openai,
)
from usage.tokens import Usage, reported_usage


def _usage(payload: dict[str, Any]) -> Usage | None:
    return reported_usage(usage_to_openai(payload.get("usageMetadata")))


def _usage_dict(usage: Usage) -> dict[str, Any]:
    reported: dict[str, Any] = usage.as_dict()
    if usage.cached_tokens:
        reported["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    return reported


@dataclass
class _TranslatedRelay(TranslatedRelay):
    """A chat upstream's stream as Gemini's events."""

    out: ChatToGeminiStream = field(default_factory=lambda: ChatToGeminiStream(model=""))

    def feed(self, chunk: dict[str, Any]) -> list[Any]:
        return self.out.feed(chunk)

    def tail(self, usage: Usage) -> list[dict[str, Any]]:
        return self.out.finish(_usage_dict(usage))

    def failed(self, exc: GatewayError) -> list[dict[str, Any]]:
        return self.out.fail(exc)


@dataclass
class _NativeRelay:
    """A Gemini upstream's events as they came, read only for the usage and the end; our model id as
    their modelVersion."""

    public_id: str
    target: upstream.Target
    ended: bool = False
    output_bytes: int = 0
    reported: Usage | None = None

    def chunks(self, data: str) -> list[dict[str, Any]]:
        try:
            payload = json.loads(data)
        except ValueError:
            raise upstream.bad_response(self.target, "an unreadable stream event") from None
        if not isinstance(payload, dict):
            raise upstream.bad_response(self.target, "an unreadable stream event")
        if "error" in payload:
            raise upstream.event_error(payload, self.target)
        self.reported = _usage(payload) or self.reported
        for candidate in payload.get("candidates") or ():
            if not isinstance(candidate, dict):
                continue
            self.ended = self.ended or bool(candidate.get("finishReason"))
            parts = (candidate.get("content") or {}).get("parts") if isinstance(candidate.get("content"), dict) else ()
            self.output_bytes += sum(len(str(p.get("text", "")).encode()) for p in parts or () if isinstance(p, dict))
        if "modelVersion" in payload:
            payload["modelVersion"] = self.public_id
        return [payload]

    def end(self) -> None:
        if not self.ended:
            raise upstream.bad_response(self.target, "a stream that ended before its finish reason")

    def usage(self, call: Call) -> Usage:
        return (self.ended and self.reported) or call.estimated(self.output_bytes)

    def tail(self, usage: Usage) -> list[dict[str, Any]]:
        return []

    def failed(self, exc: GatewayError) -> list[dict[str, Any]]:
        return [google_error(exc)[1]]


class GeminiServing(ChatServing):
    """A generateContent request (the body with the path's model as `model`); `stream` says which method."""

    PROTOCOL = GenerateContentRequest
    request: GenerateContentRequest

    def parse(self, body: dict[str, Any]) -> GenerateContentRequest:
        return parse_generate_request(body)

    def check(self) -> None:
        check_model_takes(self.request, self.model)
        self.translate_unless_all(Provider.Kind.GEMINI, lambda: gemini_to_chat(self.request, stream=self.call.stream))

    def estimate(self) -> tuple[int, int]:
        cap = self.request.output_cap(self.model.max_output_tokens)
        return estimate_gemini_tokens(self.call.body), cap * self.request.candidates()

    def native_body(self) -> bytes:
        """The client's own request, for a deployment speaking Gemini's API (the model is in the URL)."""
        return encode({name: value for name, value in self.call.body.items() if name != "model"})

    async def answer_from(self, deployment: Deployment, target: upstream.Target) -> tuple[dict[str, Any], Usage]:
        if not target.gemini:
            completion = await self.completion_from(deployment, target)
            usage = self.completion_usage(completion)
            return chat_completion_to_gemini(completion, self.model.public_id), usage
        path = target.gemini_path(deployment.upstream_model, False)
        answer = await upstream.post_json(target, path, self.native_body())
        if not isinstance(answer.get("candidates"), list) and not isinstance(answer.get("promptFeedback"), dict):
            raise upstream.bad_response(target, "an answer without candidates")
        if "modelVersion" in answer:
            answer["modelVersion"] = self.model.public_id
        return answer, _usage(answer) or self.call.estimated()

    def relay_for(self, deployment: Deployment, target: upstream.Target) -> Opened:
        if target.gemini:
            path = target.gemini_path(deployment.upstream_model, True)
            return _NativeRelay(self.model.public_id, target), path, self.native_body(), {}
        path, sent = self.chat_request(deployment, target, True)
        out = ChatToGeminiStream(model=self.model.public_id)
        return _TranslatedRelay(self.chat_relay(target, False), target, out), path, sent, {}


async def count_tokens(caller: Caller, body: dict[str, Any]) -> dict[str, int]:
    """The prompt's tokens, by the same estimate limits and budgets reserve with.

    The model must be one the key may call: counting tells as much about a model as calling it.
    """
    request = parse_count_tokens_request(body)
    inner = request.generate_content_request
    counted = {**inner, "model": request.model} if inner is not None else body
    parse_generate_request(counted)  # errors name the fields as generateContent's do
    await get_model(request.model, caller)
    return {"totalTokens": estimate_gemini_tokens(counted)}
