"""The queries of stored responses; every one is scoped to its owner (another's id is not found).

Synchronous ORM work: async callers run it through `core.db.db`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from responses.models import StoredResponse

_ITEM_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}


def with_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input items as stored and listed (the shapes of OpenAI's ItemResource): each with an id (the
    client's, or one made here), a type and a status, a message's text as a list of parts."""
    listed = []
    for item in items:
        kind = str(item.get("type") or ("message" if "role" in item else "item_reference"))
        item = {**item, "id": item.get("id") or f"{_ITEM_PREFIX.get(kind, 'item')}_{uuid.uuid4().hex}", "type": kind}
        if kind == "message" and isinstance(item.get("content"), str):
            assistant = item.get("role") == "assistant"
            part: dict[str, Any] = {"type": "output_text" if assistant else "input_text", "text": item["content"]}
            if assistant:
                part["annotations"] = []
            item["content"] = [part]
        if kind in ("message", "function_call", "function_call_output"):
            item.setdefault("status", "completed")
        listed.append(item)
    return listed


def _owned(user_id: int, response_id: str) -> StoredResponse | None:
    return StoredResponse.objects.filter(user_id=user_id, id=response_id).first()


def conversation(user_id: int, response_id: str) -> tuple[list[str], list[dict[str, Any]]] | None:
    """The chain of `response_id` (its ancestors and itself) and its items: each turn's input, then
    its output, oldest first. None when the user has no such response."""
    last = _owned(user_id, response_id)
    if last is None:
        return None
    chain = [*last.ancestors, last.id]
    rows = {row.id: row for row in StoredResponse.objects.filter(user_id=user_id, id__in=last.ancestors)}
    rows[last.id] = last
    items: list[dict[str, Any]] = []
    for turn in chain:
        row = rows.get(turn)
        if row is None:  # deleted meanwhile: its turn is gone from the conversation
            continue
        items += row.input_items
        items += [item for item in row.response.get("output") or () if isinstance(item, dict)]
    return chain, items


def save(
    user_id: int,
    response: dict[str, Any],
    input_items: list[dict[str, Any]],
    ancestors: list[str],
    created_at: datetime,
) -> None:
    StoredResponse.objects.create(
        id=response["id"],
        user_id=user_id,
        model_public_id=str(response.get("model") or "")[:200],
        previous_response_id=str(response.get("previous_response_id") or ""),
        ancestors=ancestors,
        input_items=input_items,
        response=response,
        created_at=created_at,
    )


def find(user_id: int, response_id: str) -> dict[str, Any] | None:
    row = _owned(user_id, response_id)
    return row.response if row is not None else None


def input_items(user_id: int, response_id: str) -> list[dict[str, Any]] | None:
    row = _owned(user_id, response_id)
    return row.input_items if row is not None else None


def delete(user_id: int, response_id: str) -> bool:
    deleted, _ = StoredResponse.objects.filter(user_id=user_id, id=response_id).delete()
    return deleted > 0
