"""API keys: issue, look up, revoke. Only a keyed hash of each secret is stored.

Format: "sk-" followed by 43 characters of URL-safe base64 (32 random bytes). The first
PREFIX_LEN characters after "sk-" are kept in clear to find the row and to show the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from accounts.models import ApiKey, User

KEY_PREFIX = "sk-"
PREFIX_LEN = 8
_KEY_RE = re.compile(r"^sk-[A-Za-z0-9_-]{43}$")


def _hash(secret: str) -> str:
    pepper = hashlib.sha256(b"chatsite.api-key:" + settings.SECRET_KEY.encode()).digest()
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def looks_like_key(value: str) -> bool:
    return bool(_KEY_RE.match(value))


def create_key(
    user: User,
    name: str = "",
    *,
    expires_at: datetime | None = None,
    allowed_models: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """Issue a key; returns the row and the secret, which is never available again."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        user=user,
        name=name,
        prefix=secret[len(KEY_PREFIX) : len(KEY_PREFIX) + PREFIX_LEN],
        last4=secret[-4:],
        key_hash=_hash(secret),
        expires_at=expires_at,
        allowed_models=list(allowed_models or []),
    )
    return key, secret


def find_key(secret: str) -> ApiKey | None:
    """The key row for a presented secret, active or not; None when it is no key of ours."""
    if not looks_like_key(secret):
        return None
    presented = _hash(secret)
    prefix = secret[len(KEY_PREFIX) : len(KEY_PREFIX) + PREFIX_LEN]
    for candidate in ApiKey.objects.select_related("user").filter(prefix=prefix):
        if hmac.compare_digest(candidate.key_hash, presented):
            return candidate
    return None


def find_by_secret_or_prefix(value: str) -> ApiKey | None:
    """For the admin's `apikey revoke`: the full key, or its visible prefix (with or without "sk-")."""
    if looks_like_key(value):
        return find_key(value)
    prefix = value.removeprefix(KEY_PREFIX).split("…")[0]
    if len(prefix) != PREFIX_LEN:
        return None
    matches = list(ApiKey.objects.filter(prefix=prefix)[:2])
    return matches[0] if len(matches) == 1 else None


def revoke(key: ApiKey) -> bool:
    """Revoke at once; False when it already was."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    return True
