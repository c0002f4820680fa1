"""The conversation list: pinned first, then most recently active, read a page at a time by keyset.

A cursor names the last row shown (pinned, updated_at, id); the next page is the rows after it in
the list's order, read through the `conversation_list` index, so the 100th page costs what the
first does (an OFFSET would read and drop every row before it).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from django.db.models import Q, QuerySet

from accounts.models import User
from conversations import projects, services
from conversations.models import Conversation

PAGE = 50
MAX_PAGE = 200
ORDER = ("-pinned", "-updated_at", "-id")


class BadCursor(ValueError):
    pass


def encode_cursor(conversation: Conversation) -> str:
    raw = json.dumps([conversation.pinned, conversation.updated_at.isoformat(), conversation.pk])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[bool, datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        pinned, updated, pk = json.loads(raw)
        when = datetime.fromisoformat(updated)
        if not isinstance(pinned, bool) or not isinstance(pk, int) or when.tzinfo is None:
            raise TypeError
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise BadCursor("This list position is not valid; start from the first page.") from exc
    return pinned, when, pk


OUTSIDE_PROJECTS = "none"


def listed(user: User, query: str = "", project: int | str | None = None) -> QuerySet[Conversation]:
    """The user's listed conversations (temporary ones never are), in the list's order; `project`: only
    those in that project of theirs, or OUTSIDE_PROJECTS: those in none."""
    qs = services.conversations_for(user, query).filter(temporary=False)
    if project == OUTSIDE_PROJECTS:
        qs = qs.filter(project__isnull=True)
    elif project is not None:
        qs = qs.filter(project=projects.owned(user, project))
    return qs.order_by(*ORDER)


def after(qs: QuerySet[Conversation], cursor: str) -> QuerySet[Conversation]:
    pinned, when, pk = _decode(cursor)
    # updated_at <= when bounds the index range; the OR then only breaks ties on the id.
    same = Q(pinned=pinned, updated_at__lte=when)
    later = Q(updated_at__lt=when) | Q(updated_at=when, id__lt=pk)
    rest = Q(pinned=False) if pinned else Q(pk__in=[])
    return qs.filter((same & later) | rest)


def page(qs: QuerySet[Conversation], cursor: str = "", size: int = PAGE) -> tuple[list[Conversation], str | None]:
    """One page of `qs` after `cursor` ("" = the first), and the cursor of the next page (None at the end)."""
    size = max(1, min(size, MAX_PAGE))
    if cursor:
        qs = after(qs, cursor)
    rows = list(qs.select_related("model")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return rows, (encode_cursor(rows[-1]) if more and rows else None)
