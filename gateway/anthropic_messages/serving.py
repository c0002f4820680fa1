"""POST /v1/messages (Anthropic's Messages API) over the serving core, and its count_tokens.

A deployment speaking Anthropic's API gets the client's request as it is (with its `anthropic-beta`),
and the client its Message or its stream events as they came: `cache_control`, thinking blocks and
their signatures, betas' fields survive, nothing is translated. Any other deployment gets the request
translated to chat completions (gateway.translate_anthropic), served as a chat request
(gateway.chat_completions.serving), and its answer or chunks translated back. Either way a failure
after the stream began is one Anthropic `error` event (`stream_error`).

Capability checks, the output cap and the token estimate read the Anthropic request itself. It is
translated to chat only when the model has a deployment speaking another API, once and before
anything is reserved, so what cannot be translated is a 400 then, not a failed attempt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from catalogue.models import Deployment, Provider
from gateway import upstream
from gateway.anthropic_messages.estimate import estimate_messages_tokens
from gateway.anthropic_messages.protocol import (
    MessageResponse,
    MessagesRequest,
    parse_count_tokens_request,
    parse_messages_request,
)
from gateway.anthropic_messages.stream_protocol import (
    STREAM_EVENT,
    ContentBlockDeltaEvent,
    ErrorEvent,
    MessageDeltaEvent,
    MessageStartEvent,
    MessageStopEvent,
)
from gateway.auth import Caller, get_model
from gateway.chat_completions.serving import ChatServing, TranslatedRelay, check_model_takes, readable
from gateway.errors import GatewayError
from gateway.serving.base import Call, Opened
from gateway.serving.bodies import encode, upstream_user
from gateway.translate_anthropic import (
    ChatToMessagesStream,
    UnreadableAnswer,
    anthropic_error,
    chat_completion_to_message,
    messages_to_chat,
    openai_error,
    usage_to_openai,
)
from usage.tokens import Usage, reported_usage

# Statuses of failures after a stream began, which carry none of their own on the wire.
_STREAM_ERROR_STATUSES = {"rate_limit_exceeded": 429, "insufficient_quota": 429}
_STREAM_ERROR_CODES = {"upstream_overloaded": 503, "upstream_timeout": 504, "no_deployment_available": 503}


def stream_error(exc: GatewayError) -> GatewayError:
    """A failure after the stream began, as Anthropic's error event tells it (an overloaded upstream: 529)."""
    status = _STREAM_ERROR_STATUSES.get(exc.type) or _STREAM_ERROR_CODES.get(exc.code or "") or 500
    return GatewayError(status, exc.message or "The upstream failed.", type=exc.type, code=exc.code)


def _message(payload: Any) -> MessageResponse:
    try:
        return MessageResponse.model_validate(payload)
    except ValidationError:
        raise UnreadableAnswer("an answer that is no Message") from None


def _usage(usage: dict[str, Any]) -> Usage | None:
    return reported_usage(usage_to_openai(usage))


@dataclass
class _TranslatedRelay(TranslatedRelay):
    """A chat upstream's stream as Anthropic's events."""

    out: ChatToMessagesStream = field(default_factory=lambda: ChatToMessagesStream(model=""))

    def feed(self, chunk: dict[str, Any]) -> list[Any]:
        return self.out.feed(chunk)

    def tail(self, usage: Usage) -> list[dict[str, Any]]:
        return self.out.finish(usage.as_reported())

    def failed(self, exc: GatewayError) -> list[dict[str, Any]]:
        return self.out.fail(stream_error(exc))


@dataclass
class _NativeRelay:
    """An Anthropic upstream's events as they came, read only for the usage, our model id in message_start."""

    public_id: str
    target: upstream.Target
    input_tokens: int
    started: bool = False
    ended: bool = False
    output_bytes: int = 0
    reported: dict[str, Any] = field(default_factory=dict)

    def chunks(self, data: str) -> list[dict[str, Any]]:
        try:
            payload = json.loads(data)
            event = STREAM_EVENT.validate_python(payload)
        except (ValueError, ValidationError):
            raise upstream.bad_response(self.target, "an unreadable stream event") from None
        if isinstance(event, ErrorEvent):
            _status, _type, code = openai_error(event.error.type)
            raise upstream.event_error({"error": {"message": event.error.message, "code": code}}, self.target)
        if isinstance(event, MessageStartEvent):
            self.started = True
            self.reported.update(event.message.usage.model_dump(exclude_none=True))
            payload["message"]["model"] = self.public_id
        elif isinstance(event, MessageDeltaEvent):
            self.reported.update(event.usage.model_dump(exclude_none=True))
        elif isinstance(event, ContentBlockDeltaEvent):
            for name in ("text", "thinking", "partial_json"):
                said = getattr(event.delta, name, None)
                if isinstance(said, str):
                    self.output_bytes += len(said.encode())
        elif isinstance(event, MessageStopEvent):
            self.ended = True
        return [payload] if payload.get("type") != "ping" else []

    def end(self) -> None:
        if not self.ended:
            raise upstream.bad_response(self.target, "a stream that ended before message_stop")

    def usage(self, call: Call) -> Usage:
        return (self.ended and _usage(self.reported)) or call.estimated(self.output_bytes)

    def tail(self, usage: Usage) -> list[dict[str, Any]]:
        return []

    def failed(self, exc: GatewayError) -> list[dict[str, Any]]:
        error = stream_error(exc)
        if not self.started:  # only pings went out: the message starts, then fails
            return ChatToMessagesStream(model=self.public_id, input_tokens=self.input_tokens).fail(error)
        return [anthropic_error(error)[1]]


class MessagesServing(ChatServing):
    PROTOCOL = MessagesRequest
    SENT_ON = ("anthropic-beta",)
    request: MessagesRequest

    def parse(self, body: dict[str, Any]) -> MessagesRequest:
        return parse_messages_request(body)

    def check(self) -> None:
        check_model_takes(self.request, self.model)
        self.translate_unless_all(Provider.Kind.ANTHROPIC, lambda: messages_to_chat(self.request))

    def estimate(self) -> tuple[int, int]:
        return estimate_messages_tokens(self.call.body), self.request.output_cap(self.model.max_output_tokens)

    def native_body(self, deployment: Deployment, stream: bool) -> bytes:
        """The client's own request, for a deployment speaking Anthropic's API: our end user, hashed."""
        sent = dict(self.call.body)
        sent["model"] = deployment.upstream_model
        if stream:
            sent["stream"] = True
        else:
            sent.pop("stream", None)
        metadata = sent.get("metadata")
        if isinstance(metadata, dict) and "user_id" in metadata:
            sent["metadata"] = {**metadata, "user_id": upstream_user(self.call.caller.user.pk)}
        return encode(sent)

    async def answer_from(self, deployment: Deployment, target: upstream.Target) -> tuple[dict[str, Any], Usage]:
        if not target.anthropic:
            completion = await self.completion_from(deployment, target)
            usage = self.completion_usage(completion)
            message = chat_completion_to_message(completion)
        else:
            sent = self.native_body(deployment, False)
            message = await upstream.post_json(target, target.messages_path, sent, self.sent_on)
            answer = readable(target, _message, message)
            usage = _usage(answer.usage.model_dump(exclude_none=True)) or self.call.estimated()
        message["model"] = self.model.public_id
        return message, usage

    def relay_for(self, deployment: Deployment, target: upstream.Target) -> Opened:
        estimate = self.call.prompt_estimate
        if target.anthropic:
            relay = _NativeRelay(self.model.public_id, target, estimate)
            return relay, target.messages_path, self.native_body(deployment, True), self.sent_on
        path, sent = self.chat_request(deployment, target, True)
        out = ChatToMessagesStream(model=self.model.public_id, input_tokens=estimate)
        return _TranslatedRelay(self.chat_relay(target, False), target, out), path, sent, {}


async def count_tokens(caller: Caller, body: dict[str, Any]) -> dict[str, int]:
    """The prompt's input tokens, by the same estimate limits and budgets reserve with.

    The model must be one the key may call: counting tells as much about a model as calling it.
    """
    request = parse_count_tokens_request(body)  # errors name the params of this endpoint
    await get_model(request.model, caller)
    return {"input_tokens": estimate_messages_tokens(body)}
