"""Temporary chats: conversations kept out of the list and history, and not kept beyond their session.

A temporary conversation is deleted (its open sockets told) the next time its owner loads a chat
page (`end_for`, which the page asks for once loaded: POST /api/conversations/end-temporary/),
unless a reply is being written in it at that moment; and the chat's sweep (conversations.sweeper)
deletes any user's temporary conversation idle for IDLE, which is what removes those of a browser
that never came back or a worker that died. The replies' usage is in the ledger, which records
calls, not conversations, so deleting the conversation leaves it there.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from accounts.models import User
from conversations import actions, services
from conversations.models import Conversation, Message
from conversations.services import STALE_AFTER
from core.clock import clock

IDLE = timedelta(hours=1)


def _without_live_reply(qs: QuerySet[Conversation]) -> QuerySet[Conversation]:
    live = Message.objects.filter(
        conversation=OuterRef("pk"),
        status=Message.Status.STREAMING,
        updated_at__gte=timezone.now() - STALE_AFTER,
    )
    return qs.filter(temporary=True).exclude(Exists(live))


def end_for(user: User, keep: int | None = None) -> int:
    """Deletes the user's temporary conversations (but `keep`, the one being opened); returns how many."""
    qs = _without_live_reply(Conversation.objects.filter(owner=user))
    if keep is not None:
        qs = qs.exclude(pk=keep)
    ended = 0
    for pk in list(qs.values_list("pk", flat=True)):
        try:
            actions.do_delete(user, pk)
        except services.ConversationGone:  # deleted meanwhile, by another request
            continue
        ended += 1
    return ended


def sweep() -> int:
    """Deletes every temporary conversation idle for IDLE (its owner's session ended long ago)."""
    stale = _without_live_reply(Conversation.objects.filter(updated_at__lt=clock().now() - IDLE))
    _, deleted = stale.delete()
    return deleted.get("conversations.Conversation", 0)
