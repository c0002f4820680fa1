"""The REST API's authentication for scripts: our issued API keys, `Authorization: Bearer sk-...`.

A request without an Authorization header is left to the next class (the browser's session, with
its CSRF check); one with a bearer key stands or falls by that key: unknown, revoked or expired
keys and deactivated users are refused with 401, on the very request after the change.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts import keys
from accounts.models import ApiKey, User

# last_used_at is written when older than this, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            return None
        if len(header) != 2:
            raise AuthenticationFailed("The Authorization header must be 'Bearer YOUR_KEY'.", code="invalid_api_key")
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError:
            secret = ""
        key = keys.find_key(secret)
        if key is None or not key.is_active or not key.user.is_active:
            raise AuthenticationFailed("Invalid, revoked or expired API key.", code="invalid_api_key")
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer an unauthenticated request with 401 and this challenge (rather than 403).
        return 'Bearer realm="api"'


def authenticated_by_key(request: Any) -> bool:
    return isinstance(getattr(request, "auth", None), ApiKey)
