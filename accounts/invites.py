"""Invite links for SIGNUP=invite: made by an admin or a member, each good for one sign-up.

The link carries a random token; only its keyed hash is stored (as for API keys), so the list of
invites in the database or the admin opens no door. Following a link keeps its token in the
session until the sign-up (local or single sign-on) uses it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Invite, User

SESSION_KEY = "chatsite.invite"
MAX_OPEN_PER_USER = 20


def _hash(token: str) -> str:
    pepper = hashlib.sha256(b"chatsite.invite:" + settings.SECRET_KEY.encode()).digest()
    return hmac.new(pepper, token.encode(), hashlib.sha256).hexdigest()


class TooManyInvites(Exception):
    pass


def create(user: User) -> tuple[Invite, str]:
    """A new invite by `user`; the token is returned once, for the link."""
    open_count = Invite.objects.filter(created_by=user, used_at__isnull=True, expires_at__gt=timezone.now()).count()
    if open_count >= MAX_OPEN_PER_USER:
        raise TooManyInvites(f"You have {open_count} unused invites; wait for some to be used or to expire.")
    token = secrets.token_urlsafe(24)
    invite = Invite.objects.create(
        created_by=user, token_hash=_hash(token), expires_at=timezone.now() + timedelta(days=settings.INVITE_DAYS)
    )
    return invite, token


def find(token: str) -> Invite | None:
    """The usable invite for a token, or None."""
    if not token or len(token) > 100:
        return None
    invite = Invite.objects.select_related("created_by").filter(token_hash=_hash(token)).first()
    return invite if invite is not None and invite.usable else None


def remember(request: HttpRequest, token: str) -> Invite | None:
    invite = find(token)
    if invite is not None:
        request.session[SESSION_KEY] = token
    return invite


def pending(request: HttpRequest) -> Invite | None:
    """The invite this visitor followed, if it can still be used."""
    token = request.session.get(SESSION_KEY, "") if hasattr(request, "session") else ""
    return find(token) if isinstance(token, str) else None


def consume(request: HttpRequest, user: User) -> bool:
    """Mark the visitor's invite used by `user`; False when it no longer can be."""
    token = request.session.get(SESSION_KEY, "")
    if not isinstance(token, str) or not token:
        return False
    used = Invite.objects.filter(token_hash=_hash(token), used_at__isnull=True, expires_at__gt=timezone.now()).update(
        used_by=user, used_at=timezone.now()
    )
    request.session.pop(SESSION_KEY, None)
    return used == 1
