"""STAFF_2FA_REQUIRED=1: staff set up two-factor authentication before they use anything else.

Staff accounts hold the admin; a stolen password alone must not be enough. Until a staff member has
an authenticator app (TOTP) set up, every page sends them to its set-up, which the rest of the
two-factor pages, signing out and static files stay reachable around.
"""

from __future__ import annotations

from collections.abc import Callable

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

_OPEN_PREFIXES = (
    "/accounts/2fa/",
    "/accounts/reauthenticate/",
    "/accounts/logout/",
    "/accounts/login/",
    "/static/",
    "/healthz",
    "/readyz",
)


class StaffTwoFactorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.STAFF_2FA_REQUIRED and self._must_set_up(request):
            messages.warning(request, "Staff accounts need two-factor authentication: set up an authenticator app.")
            return redirect(reverse("mfa_activate_totp"))
        return self.get_response(request)

    @staticmethod
    def _must_set_up(request: HttpRequest) -> bool:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_staff:
            return False
        if request.path.startswith(_OPEN_PREFIXES):
            return False
        return not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
