"""The chat socket's client frames, parsed and validated at the boundary, and its frame rate limit.

Client → server (JSON text frames):
    {"type": "send", "content", "attachments"?: [upload id, ...]}
    {"type": "edit", "id", "content"}  {"type": "regenerate"}                {"type": "stop"}
    {"type": "sync"}                   {"type": "ping"}
    {"type": "switch", "id"}           (show another version of a message)

Anything else (binary frames, invalid or too deep JSON, a number where an id belongs, text with a NUL
or an unpaired surrogate) is a FrameError, answered with an error frame; the socket stays open.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, TypeAdapter, ValidationError

from core.clock import clock
from core.inputs import BadInput, parse_json

# Frames are flat objects; anything deeper is no frame of ours.
MAX_DEPTH = 4
KINDS = ("send", "edit", "regenerate", "switch", "stop", "sync", "ping")


class FrameError(Exception):
    """A frame refused, with a message fit to show the person."""


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Send(_Frame):
    type: Literal["send"]
    content: StrictStr
    # Ids of the sender's uploads (POST /files/); the server checks they are theirs.
    attachments: Annotated[list[Annotated[StrictInt, Field(gt=0, lt=2**63)]], Field(max_length=100)] = []


class Edit(_Frame):
    type: Literal["edit"]
    id: Annotated[StrictInt, Field(gt=0, lt=2**63)]
    content: StrictStr


class Regenerate(_Frame):
    type: Literal["regenerate"]


class Switch(_Frame):
    type: Literal["switch"]
    id: Annotated[StrictInt, Field(gt=0, lt=2**63)]


class Stop(_Frame):
    type: Literal["stop"]


class Sync(_Frame):
    type: Literal["sync"]


class Ping(_Frame):
    type: Literal["ping"]


ClientFrame = Annotated[Send | Edit | Regenerate | Switch | Stop | Sync | Ping, Field(discriminator="type")]
_frames: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


def parse(text_data: str | None, bytes_data: bytes | None) -> ClientFrame:
    if text_data is None:
        raise FrameError("Frames must be JSON text.")
    try:
        data: Any = parse_json(text_data, max_bytes=settings.CHAT_SOCKET_MAX_FRAME_BYTES, max_depth=MAX_DEPTH)
    except BadInput as exc:
        raise FrameError(str(exc)) from None
    if not isinstance(data, dict):
        raise FrameError('A frame must be a JSON object with a "type".')
    kind = data.get("type")
    if kind not in KINDS:
        shown = repr(kind) if isinstance(kind, str) and len(kind) <= 40 else "that"
        raise FrameError(f"Unknown request type {shown}; expected one of {', '.join(KINDS)}.")
    try:
        return _frames.validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"][1:]) or "frame"
        raise FrameError(f"Invalid {kind!r} request: {field}: {first['msg']}.") from None


class FrameBucket:
    """A token bucket per socket: `burst` frames at once, refilled at `rate` frames per second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.at = clock().monotonic()

    def take(self) -> bool:
        now = clock().monotonic()
        self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
