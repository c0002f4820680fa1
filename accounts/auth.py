"""How people get in: sign-up modes, invites, the client's address, single sign-on.

django-allauth runs sign-up, sign-in (with the two-factor step when a user set it up), password reset
and change, and OpenID Connect; its adapters are where our rules apply:
- SIGNUP: `open` lets anyone sign up; `invite` only whoever follows an unused invite link (made by an
  admin or a member, see accounts.invites); `approval` creates the account inactive until an admin
  activates it; `closed` lets nobody. A first single sign-on counts as a sign-up, under the same rule.
- LOCAL_LOGIN=0 refuses passwords (accounts.forms.LoginForm): single sign-on only.
- One client address for rate limits and lockouts (`client_ip`): the peer's, or behind PROXY_HOPS
  proxies of ours (one by default with HTTPS=1) the one the outermost appended to X-Forwarded-For
  (anything before it is the client's to invent).
- Each single sign-on puts the user in the groups the provider's OIDC_GROUPS_CLAIM names
  (`sync_groups_claim`, see accounts.groups.sync_sso_groups).
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest
from django.shortcuts import redirect

from accounts import groups, invites
from accounts.models import User

# allauth's notes that merely say "you signed in/out" are not worth a banner on the next page.
_QUIET = ("account/messages/logged_in.txt", "account/messages/logged_out.txt")


def client_ip(request: HttpRequest) -> str | None:
    """The address our outermost proxy (of PROXY_HOPS) saw; entries before it are the client's to invent."""
    if settings.PROXY_HOPS:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= settings.PROXY_HOPS:
            return hops[-settings.PROXY_HOPS]
    return request.META.get("REMOTE_ADDR") or None


def attempted_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The account a sign-in tried (for lockouts): allauth authenticates with `username`; its form posts `login`."""
    if credentials and credentials.get("username"):
        return str(credentials["username"])
    data = getattr(request, "POST", None) or {}
    return data.get("login") or data.get("username") or None


def signup_open(request: HttpRequest) -> bool:
    mode = settings.SIGNUP
    if mode == "closed":
        return False
    if mode == "invite":
        return invites.pending(request) is not None
    return True


def _admit(request: HttpRequest, user: User) -> None:
    """The sign-up mode's last word on a new account, just before it is saved."""
    if settings.SIGNUP == "approval":
        user.is_active = False


def _consume_invite(request: HttpRequest, user: User) -> None:
    if settings.SIGNUP != "invite":
        return
    if not invites.consume(request, user):
        # Used or expired since the sign-up page opened: the transaction drops the new account.
        messages.error(request, "This invite link has been used or has expired; ask for a new one.")
        raise ImmediateHttpResponse(redirect("signup"))


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        # Django's own wording, which people and scripts already know.
        "username_password_mismatch": "Please enter a correct username and password. Note that both fields may be "
        "case-sensitive.",
        "too_many_login_attempts": "Too many failed sign-ins. Wait a few minutes, then try again.",
    }

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return signup_open(request)

    def save_user(self, request: HttpRequest, user: Any, form: Any, commit: bool = True) -> Any:
        with transaction.atomic():
            user = super().save_user(request, user, form, commit=False)
            _admit(request, user)
            if commit:
                user.save()
                _consume_invite(request, user)
        return user

    def get_client_ip(self, request: HttpRequest) -> str:
        return client_ip(request) or "unknown"

    def add_message(
        self, request: HttpRequest, level: int, message_template: str = "", *args: Any, **kwargs: Any
    ) -> None:
        if message_template in _QUIET:
            return
        super().add_message(request, level, message_template, *args, **kwargs)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: Any) -> bool:
        return signup_open(request)

    def save_user(self, request: HttpRequest, sociallogin: Any, form: Any = None) -> Any:
        with transaction.atomic():
            _admit(request, sociallogin.user)
            user = super().save_user(request, sociallogin, form)
            _consume_invite(request, user)
        return user


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check, for sign-ins that come with a request (every page that signs in).

    Code that authenticates without one (a shell, Django's test client's `login`) has no address to
    count against and nothing to lock out; it goes on to the next backend instead of failing.
    """

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> Any:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


def _claim(extra_data: dict[str, Any], name: str) -> Any:
    """A claim from the user info, else from the ID token (where some providers put groups only)."""
    for source in (extra_data.get("userinfo"), extra_data.get("id_token"), extra_data):
        if isinstance(source, dict) and name in source:
            return source[name]
    return None


def sync_groups_claim(sender: Any, request: HttpRequest, user: User, sociallogin: Any = None, **kwargs: Any) -> None:
    """At each single sign-on (allauth's user_logged_in), memberships follow the provider's groups claim."""
    name = settings.OIDC_GROUPS_CLAIM
    if sociallogin is None or not name:
        return
    claimed = _claim(sociallogin.account.extra_data or {}, name)
    groups.sync_sso_groups(user, groups.claimed_names(claimed))
