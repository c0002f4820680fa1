"""GET and DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items: the caller's stored responses.

Another user's id is not found, whatever the call.
"""

from __future__ import annotations

from typing import Any

from core.db import db
from core.inputs import BadInput, query_int
from gateway.auth import Caller
from gateway.errors import GatewayError
from responses import store


def not_found(response_id: str, param: str | None = None) -> GatewayError:
    return GatewayError(
        404,
        f"{'Previous response' if param else 'Response'} with id '{response_id[:100]}' not found.",
        param=param,
        code="previous_response_not_found" if param else "not_found",
    )


async def retrieve(caller: Caller, response_id: str) -> dict[str, Any]:
    found = await db(store.find, caller.user.pk, response_id)
    if found is None:
        raise not_found(response_id)
    return found


async def delete(caller: Caller, response_id: str) -> dict[str, Any]:
    if not await db(store.delete, caller.user.pk, response_id):
        raise not_found(response_id)
    return {"id": response_id, "object": "response.deleted", "deleted": True}


def _limit(query: Any) -> int:
    try:
        return query_int(query, "limit", default=20, minimum=1, maximum=100)
    except BadInput as exc:
        raise GatewayError(400, str(exc), param="limit", code="invalid_value") from None


async def list_input_items(caller: Caller, response_id: str, query: Any) -> dict[str, Any]:
    """One page of a stored response's input items (`limit`, `order` desc by default, `after`)."""
    limit, order, after = _limit(query), query.get("order") or "desc", query.get("after")
    if order not in ("asc", "desc"):
        raise GatewayError(400, "order must be 'asc' or 'desc'.", param="order", code="invalid_value")
    items = await db(store.input_items, caller.user.pk, response_id)
    if items is None:
        raise not_found(response_id)
    if order == "desc":
        items = items[::-1]
    if after:
        position = next((i for i, item in enumerate(items) if item.get("id") == after), None)
        if position is None:
            raise GatewayError(400, f"No input item has the id '{after[:100]}'.", param="after", code="invalid_value")
        items = items[position + 1 :]
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else "",
        "last_id": page[-1]["id"] if page else "",
        "has_more": len(items) > limit,
    }
