"""Anthropic's stream events as pydantic models: what a streamed reply from an Anthropic upstream is read with.

Anthropic says new event and delta types may appear and a client should ignore those it does not
know, so unknown ones are kept as `OtherEvent` / `OtherDelta` rather than refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Tag, TypeAdapter

from gateway.anthropic_messages.protocol import ContentBlock, MessageResponse, StopReason, tagged
from gateway.chat_completions.protocol import OpenModel


class TextDelta(OpenModel):
    text: str
    type: Literal["text_delta"]


class InputJsonDelta(OpenModel):
    partial_json: str
    type: Literal["input_json_delta"]


class ThinkingDelta(OpenModel):
    thinking: str
    type: Literal["thinking_delta"]


class SignatureDelta(OpenModel):
    signature: str
    type: Literal["signature_delta"]


class OtherDelta(OpenModel):
    """Ours: a delta type we do not model (`citations_delta`, ...)."""

    type: str


BlockDelta = Annotated[
    Annotated[TextDelta, Tag("text_delta")]
    | Annotated[InputJsonDelta, Tag("input_json_delta")]
    | Annotated[ThinkingDelta, Tag("thinking_delta")]
    | Annotated[SignatureDelta, Tag("signature_delta")]
    | Annotated[OtherDelta, Tag("other")],
    tagged(frozenset(("text_delta", "input_json_delta", "thinking_delta", "signature_delta"))),
]


class MessageStartEvent(OpenModel):
    message: MessageResponse
    type: Literal["message_start"]


class ContentBlockStartEvent(OpenModel):
    content_block: ContentBlock
    index: int
    type: Literal["content_block_start"]


class ContentBlockDeltaEvent(OpenModel):
    delta: BlockDelta
    index: int
    type: Literal["content_block_delta"]


class ContentBlockStopEvent(OpenModel):
    index: int
    type: Literal["content_block_stop"]


class MessageDelta(OpenModel):
    stop_reason: StopReason | str | None = None
    stop_sequence: str | None = None


class DeltaUsage(OpenModel):
    """Cumulative counts; input and cache counts appear only when they changed (or always, lately)."""

    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int


class MessageDeltaEvent(OpenModel):
    delta: MessageDelta
    type: Literal["message_delta"]
    usage: DeltaUsage


class MessageStopEvent(OpenModel):
    type: Literal["message_stop"]


class PingEvent(OpenModel):
    type: Literal["ping"]


class ErrorDetail(OpenModel):
    type: str
    message: str


class ErrorEvent(OpenModel):
    """An error inside a stream, and the body of an error answer: {"type": "error", "error": {...}}."""

    type: Literal["error"]
    error: ErrorDetail


class OtherEvent(OpenModel):
    """Ours: Anthropic says new event types may appear; a client should ignore those it does not know."""

    type: str


_EVENT_TYPES = frozenset(
    (
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    )
)
StreamEvent = Annotated[
    Annotated[MessageStartEvent, Tag("message_start")]
    | Annotated[ContentBlockStartEvent, Tag("content_block_start")]
    | Annotated[ContentBlockDeltaEvent, Tag("content_block_delta")]
    | Annotated[ContentBlockStopEvent, Tag("content_block_stop")]
    | Annotated[MessageDeltaEvent, Tag("message_delta")]
    | Annotated[MessageStopEvent, Tag("message_stop")]
    | Annotated[PingEvent, Tag("ping")]
    | Annotated[ErrorEvent, Tag("error")]
    | Annotated[OtherEvent, Tag("other")],
    tagged(_EVENT_TYPES),
]
STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(StreamEvent)
