"""Gemini's generateContent and streamGenerateContent over the serving core.

A deployment speaking Gemini's API gets the client's request as it is (but our `model`, which came
from the path), and the client Google's answer or stream events byte for byte as they came
(gateway.verbatim), but the value of `modelVersion`, which names our model (as `model` does in
Anthropic's passthrough): safety settings, cached content, thought signatures, fields we do not
model, their order and spacing survive, nothing is parsed and re-encoded. Any other deployment gets
the request translated to chat completions (gateway.translate_gemini), served as a chat request
(gateway.chat_completions.serving), and its answer or chunks translated back. Either way a failure
after the stream began is one `{"error": {...}}` event in Google's shape: a Gemini upstream's own
error event as it sent it (its message scrubbed of keys), else ours.

Capability checks, the output cap and the token estimate read the Gemini request itself. It is
translated to chat only when the model has a deployment speaking another API, once and before
anything is reserved, so what cannot be translated is a 400 then, not a failed attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catalogue.models import Deployment, Provider
from gateway import upstream
from gateway.chat_completions.serving import ChatServing, TranslatedRelay, check_model_takes
from gateway.errors import GatewayError
from gateway.gemini_api.estimate import estimate_gemini_tokens
from gateway.gemini_api.protocol import GenerateContentRequest, parse_generate_request
from gateway.serving.base import Call, Opened
from gateway.serving.bodies import encode
from gateway.translate_gemini import (
    ChatToGeminiStream,
    chat_completion_to_gemini,
    gemini_to_chat,
    google_error,
    usage_to_openai,
)
from gateway.verbatim import Verbatim
from usage.tokens import Usage, reported_usage


def _usage(payload: dict[str, Any]) -> Usage | None:
    return reported_usage(usage_to_openai(payload.get("usageMetadata")))


@dataclass
class _TranslatedRelay(TranslatedRelay):
    """A chat upstream's stream as Gemini's events."""

    out: ChatToGeminiStream = field(default_factory=lambda: ChatToGeminiStream(model=""))

    def feed(self, chunk: dict[str, Any]) -> list[Any]:
        return self.out.feed(chunk)

    def tail(self, usage: Usage) -> list[dict[str, Any]]:
        return self.out.finish(usage.as_reported())

    def failed(self, exc: GatewayError) -> list[dict[str, Any]]:
        return self.out.fail(exc)


@dataclass
class _NativeRelay:
    """A Gemini upstream's events relayed as they came (Verbatim), read only for the usage and the end;
    our model id as their modelVersion. An error event ending the stream goes on as Google's too."""

    public_id: str
    target: upstream.Target
    ended: bool = False
    output_bytes: int = 0
    reported: Usage | None = None
    error_event: tuple[GatewayError, Verbatim] | None = None  # the failure an upstream error event was

    def chunks(self, data: str) -> list[dict[str, Any]]:
        try:
            payload = Verbatim.of(data)
        except ValueError:
            raise upstream.bad_response(self.target, "an unreadable stream event") from None
        if "error" in payload:
            exc = upstream.event_error(payload, self.target)
            self.error_event = (exc, _scrubbed(payload, self.target))
            raise exc
        self.reported = _usage(payload) or self.reported
        for candidate in payload.get("candidates") or ():
            if not isinstance(candidate, dict):
                continue
            self.ended = self.ended or bool(candidate.get("finishReason"))
            parts = (candidate.get("content") or {}).get("parts") if isinstance(candidate.get("content"), dict) else ()
            self.output_bytes += sum(len(str(p.get("text", "")).encode()) for p in parts or () if isinstance(p, dict))
        payload.replace("modelVersion", self.public_id)
        return [payload]

    def end(self) -> None:
        if not self.ended:
            raise upstream.bad_response(self.target, "a stream that ended before its finish reason")

    def usage(self, call: Call) -> Usage:
        return (self.ended and self.reported) or call.estimated(self.output_bytes)

    def tail(self, usage: Usage) -> list[dict[str, Any]]:
        return []

    def failed(self, exc: GatewayError) -> list[dict[str, Any]]:
        if self.error_event is not None and self.error_event[0] is exc:
            return [self.error_event[1]]
        return [google_error(exc)[1]]


def _scrubbed(event: Verbatim, target: upstream.Target) -> Verbatim:
    """An upstream's error event as a client may read it: its message scrubbed, if that changes it."""
    error = event.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    if isinstance(error, dict) and isinstance(message, str) and upstream.scrub(message, target) != message:
        event.replace("error", {**error, "message": upstream.scrub(message, target)})
    return event


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
        answer = await upstream.post_verbatim(target, path, self.native_body())
        if not isinstance(answer.get("candidates"), list) and not isinstance(answer.get("promptFeedback"), dict):
            raise upstream.bad_response(target, "an answer without candidates")
        answer.replace("modelVersion", self.model.public_id)
        return answer, _usage(answer) or self.call.estimated()

    def relay_for(self, deployment: Deployment, target: upstream.Target) -> Opened:
        if target.gemini:
            path = target.gemini_path(deployment.upstream_model, True)
            return _NativeRelay(self.model.public_id, target), path, self.native_body(), {}
        path, sent = self.chat_request(deployment, target, True)
        out = ChatToGeminiStream(model=self.model.public_id)
        return _TranslatedRelay(self.chat_relay(target, False), target, out), path, sent, {}
