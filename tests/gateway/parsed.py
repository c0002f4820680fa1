"""What an "accepts" test checks: the request was read as it was sent, not merely not refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def read_as_sent(request: BaseModel, payload: dict[str, Any]) -> None:
    """Every field sent was read, by its wire name, and none was dropped or changed."""
    assert request.model_dump(exclude_unset=True, by_alias=True) == payload
