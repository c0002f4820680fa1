"""OpenAI's cursor pagination of a list endpoint: `limit`, `order` (asc or desc by creation), `after`, `before`.

    rows, has_more = page(queryset, request.GET, cursor="public_id", default_limit=20, max_limit=100)
    return listing([to_object(r) for r in rows], has_more)

The cursor is an object's id in the list (`after`: the page that follows it, `before`: the one that
precedes it); an id that is not in the list is a 400 naming the parameter. Synchronous (a database thread).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from core.inputs import BadInput, query_int
from gateway.errors import GatewayError

M = TypeVar("M", bound=Model)


def _bad(param: str, message: str) -> GatewayError:
    return GatewayError(400, message, param=param, code="invalid_value")


def _pivot(queryset: QuerySet[M], cursor: str, param: str, value: str) -> int:
    found = queryset.filter(**{cursor: value}).values_list("pk", flat=True).first()
    if found is None:
        raise _bad(param, f"No object in this list has the id '{value[:100]}' given as '{param}'.")
    return int(found)


def page(
    queryset: QuerySet[M], query: Mapping[str, str], *, cursor: str, default_limit: int, max_limit: int
) -> tuple[list[M], bool]:
    """One page of the queryset (ids increase with creation) and whether more follow it in that direction."""
    try:
        limit = query_int(query, "limit", default=default_limit, minimum=1, maximum=max_limit)
    except BadInput as exc:
        raise _bad("limit", str(exc)) from None
    order = query.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise _bad("order", "order must be 'asc' or 'desc'.")
    after, before = query.get("after"), query.get("before")
    forward = order == "asc"
    rows = queryset
    if after:
        pivot = _pivot(queryset, cursor, "after", after)
        rows = rows.filter(pk__gt=pivot) if forward else rows.filter(pk__lt=pivot)
    if before:
        pivot = _pivot(queryset, cursor, "before", before)
        # The page nearest the cursor on its other side, taken walking away from it, then put in order.
        nearest = rows.filter(pk__lt=pivot) if forward else rows.filter(pk__gt=pivot)
        taken = list(nearest.order_by("-pk" if forward else "pk")[: limit + 1])
        return taken[:limit][::-1], len(taken) > limit
    taken = list(rows.order_by("pk" if forward else "-pk")[: limit + 1])
    return taken[:limit], len(taken) > limit


def listing(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """A list object as OpenAI's list endpoints answer it."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else "",
        "last_id": data[-1]["id"] if data else "",
        "has_more": has_more,
    }
