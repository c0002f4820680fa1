"""A conversation's sampling settings (temperature, max output tokens): checked when set, sent with each reply.

Unset (null) means the model's own default: nothing is sent for it. The output cap is kept under
the model's own output limit when the reply is asked for, not when it is set, so a conversation
moved to a model with a smaller limit still works.
"""

from __future__ import annotations

import enum
import math
from typing import Any, Final

from catalogue.models import LanguageModel
from conversations.models import Conversation

MAX_TEMPERATURE = 2.0
# A bound on what can be stored, far above any model's output; the model's own limit applies on sending.
MAX_OUTPUT_TOKENS = 1_000_000


class Keep(enum.Enum):
    """ "Leave it as it is": None already means "back to the model's default"."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


class SettingError(ValueError):
    """A setting refused, with a message fit to show the person and the field it is about."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def _error(message: str, param: str) -> SettingError:
    return SettingError(message, param)


def check_temperature(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _error("The temperature must be a number.", "temperature")
    if not 0 <= value <= MAX_TEMPERATURE:
        raise _error(f"The temperature must be between 0 and {MAX_TEMPERATURE:g}.", "temperature")
    return float(value)


def check_max_output_tokens(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _error("The maximum output tokens must be a whole number.", "max_output_tokens")
    if not 1 <= value <= MAX_OUTPUT_TOKENS:
        raise _error(f"The maximum output tokens must be between 1 and {MAX_OUTPUT_TOKENS:,}.", "max_output_tokens")
    return value


def apply(
    conversation: Conversation,
    *,
    temperature: float | Keep | None = KEEP,
    max_output_tokens: int | Keep | None = KEEP,
) -> list[str]:
    """Sets the settings given (checked first, so a refusal changes nothing); returns the fields changed."""
    changes: dict[str, Any] = {}
    if temperature is not KEEP:
        changes["temperature"] = check_temperature(temperature)
    if max_output_tokens is not KEEP:
        changes["max_output_tokens"] = check_max_output_tokens(max_output_tokens)
    for name, value in changes.items():
        setattr(conversation, name, value)
    return list(changes)


def upstream_options(conversation: Conversation, model: LanguageModel | None) -> dict[str, Any]:
    """The request fields the conversation's settings add to a reply's upstream request."""
    options: dict[str, Any] = {}
    if conversation.temperature is not None:
        options["temperature"] = conversation.temperature
    if conversation.max_output_tokens is not None:
        limit = model.max_output_tokens if model else conversation.max_output_tokens
        options["max_tokens"] = max(1, min(conversation.max_output_tokens, limit))
    return options
