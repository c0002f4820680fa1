from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def auth_settings(request: HttpRequest) -> dict[str, object]:
    """What the sign-in and sign-up pages offer (SIGNUP, LOCAL_LOGIN)."""
    return {"signup_mode": settings.SIGNUP, "local_login": settings.LOCAL_LOGIN}
