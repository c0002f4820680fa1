"""Share links: a read-only copy of a conversation as it was when shared, at /s/<token>/.

The token is `secrets.token_urlsafe(32)` (256 random bits), given to the owner once in the link and
stored only as its SHA-256: a share is found by the hash of the token presented, so no stored secret
is ever compared and a copy of the database opens no link. (A fast unsalted hash is enough for a
random 256-bit token: there is nothing to guess a dictionary from.) Revoking deletes the row, so a
revoked link is the same 404 as one that never existed; deleting the conversation deletes its links.
"""

from __future__ import annotations

import hashlib
import secrets

from django.db import transaction
from django.db.models import QuerySet

from accounts.models import User
from conversations import export, services
from conversations.models import Share

TOKEN_BYTES = 32
MAX_TOKEN_CHARS = 100
MAX_SHARES = 500


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(user: User, conversation_id: int) -> tuple[Share, str]:
    """Copies the conversation as it is now into a new share; returns it and its token (shown once)."""
    with transaction.atomic():
        conversation = services.find_conversation(user, conversation_id)
        if conversation is None:
            raise services.ConversationGone()
        if conversation.temporary:
            raise services.ChatError("A temporary chat cannot be shared.")
        # Serialises one user's shares so the cap holds under concurrent requests.
        User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()
        if Share.objects.filter(owner=user).count() >= MAX_SHARES:
            raise services.ChatError(f"You have {MAX_SHARES} share links; revoke some on your profile page first.")
        data = export.snapshot(conversation)
        if not data["messages"]:
            raise services.ChatError("There is nothing to share yet.")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        share = Share.objects.create(
            owner=user, conversation=conversation, token_hash=_digest(token), title=data["title"], snapshot=data
        )
    return share, token


def shared(token: str) -> Share | None:
    """The share a link's token opens; None for a wrong, revoked or malformed one, or one whose owner's
    account is deactivated (an admin closing an account closes its links too)."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return Share.objects.filter(token_hash=_digest(token), owner__is_active=True).first()


def shares_of(user: User) -> QuerySet[Share]:
    return Share.objects.filter(owner=user).defer("snapshot").order_by("-created_at", "-id")


def revoke(user: User, share_id: int) -> bool:
    """Deletes one of the user's shares; False when there is none of theirs by that id."""
    deleted, _ = Share.objects.filter(pk=share_id, owner=user).delete()
    return bool(deleted)
