from __future__ import annotations

from typing import Any

from allauth.account import views as allauth_views
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts import audit, groups, invites, services
from accounts.forms import ApiKeyCreateForm, GroupKeyForm, GroupMemberForm
from accounts.groups import usable_models_for
from accounts.models import ApiKey, Invite, User

# The model id put into the snippet templates the page's script fills in when another model is chosen.
_MODEL_SLOT = "__MODEL__"


class SignupView(allauth_views.SignupView):
    """allauth's sign-up; a form with errors answers 400, as the page always did."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)
        context["invite"] = invites.pending(self.request)
        return context

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        response.status_code = 400
        return response


@require_http_methods(["GET"])
def accept_invite(request: HttpRequest, token: str) -> HttpResponse:
    """An invite link: remembered in the session, then on to sign-up (local or single sign-on)."""
    invite = invites.remember(request, token)
    if invite is None:
        return render(request, "accounts/invite_invalid.html", status=404)
    return redirect("signup")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def invite_links(request: HttpRequest) -> HttpResponse:
    """SIGNUP=invite: make an invite link (shown once) and see one's invites."""
    user = _user(request)
    if settings.SIGNUP != "invite":
        return render(request, "accounts/invites.html", {"enabled": False}, status=404)
    link = None
    if request.method == "POST":
        try:
            invite, token = invites.create(user)
        except invites.TooManyInvites as exc:
            messages.error(request, str(exc))
        else:
            link = request.build_absolute_uri(reverse("accept_invite", args=[token]))
            audit.record(user, invite, audit.ADDITION, "Invite link created.")
    sent = Invite.objects.filter(created_by=user).select_related("used_by")[:100]
    return render(
        request, "accounts/invites.html", {"enabled": True, "link": link, "sent": sent, "days": settings.INVITE_DAYS}
    )


@never_cache
@login_required
def security(request: HttpRequest) -> HttpResponse:
    """Password, two-factor authentication, single sign-on connections, invites: the account's safety."""
    from allauth.mfa.models import Authenticator

    user = _user(request)
    kinds = set(Authenticator.objects.filter(user=user).values_list("type", flat=True))
    context = {
        "has_password": user.has_usable_password(),
        "totp": Authenticator.Type.TOTP in kinds,
        "recovery_codes": Authenticator.Type.RECOVERY_CODES in kinds,
        "invites": settings.SIGNUP == "invite",
        "staff_2fa_required": settings.STAFF_2FA_REQUIRED and user.is_staff,
    }
    return render(request, "accounts/security.html", context)


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    """The profile: create and list API keys, client snippets, usage.

    A new key's secret exists only in the response to the POST that created it: it is rendered into
    that page and kept nowhere else (no session, no message, no redirect).
    """
    user = _user(request)
    new_key: ApiKey | None = None
    secret: str | None = None
    if request.method == "POST":
        form = ApiKeyCreateForm(request.POST, user=user)
        if form.is_valid():
            new_key, secret = services.issue_key(
                user, form.cleaned_data["name"], expires_at=form.expires_at, allowed_models=form.model_ids
            )
            form = ApiKeyCreateForm(user=user)
    else:
        form = ApiKeyCreateForm(user=user)
    context = _profile_context(request, user, form, new_key, secret)
    return render(request, "accounts/profile.html", context, status=400 if form.errors else 200)


def _profile_context(
    request: HttpRequest, user: User, form: ApiKeyCreateForm, new_key: ApiKey | None, secret: str | None
) -> dict[str, Any]:
    models = list(usable_models_for(user).chat().values_list("public_id", flat=True))
    wanted = request.GET.get("model", "")
    if new_key is not None and new_key.allowed_models:
        models_for_key = [m for m in models if m in new_key.allowed_models]
        chosen = models_for_key[0] if models_for_key else new_key.allowed_models[0]
    else:
        chosen = wanted if wanted in models else (models[0] if models else "model-id")
    base_url = request.build_absolute_uri("/v1").rstrip("/")
    snippets = services.snippets(base_url, chosen, secret)
    now = timezone.now()
    keys = list(services.own_keys(user))
    for key in keys:
        key.status = services.key_status(key, now)  # type: ignore[attr-defined]
    return {
        "form": form,
        "new_key": new_key,
        "secret": secret,
        "keys": keys,
        "models": models,
        "chosen_model": chosen,
        "base_url": base_url,
        "snippets": [(name, services.SNIPPET_LABELS[name], code) for name, code in snippets.items()],
        "snippet_templates": services.snippets(base_url, _MODEL_SLOT, secret),
        "model_slot": _MODEL_SLOT,
    }


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def revoke_key(request: HttpRequest, key_id: int) -> HttpResponse:
    """GET asks for confirmation; POST revokes. Someone else's key answers 404 either way."""
    user = _user(request)
    if request.method == "POST":
        key, revoked = services.revoke_own_key(user, key_id)
        if revoked:
            messages.success(request, f"Key “{key.name}” ({key.display}) is revoked; it no longer works.")
        else:
            messages.info(request, f"Key “{key.name}” ({key.display}) was already revoked.")
        return redirect("profile")
    key = services.own_key(user, key_id)
    return render(request, "accounts/revoke_key.html", {"key": key})


# --- groups: one's groups, and a group's page for its managers ------------------------------------


@never_cache
@login_required
@require_http_methods(["GET"])
def my_groups(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    context = {"member_of": user.groups.order_by("name"), "managed": groups.managed_by(user)}
    return render(request, "accounts/groups.html", context)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def group_page(request: HttpRequest, group_id: int) -> HttpResponse:
    """GET shows the group; POST does one `action`: add-member, remove-member, create-key, revoke-key.

    Only the group's managers reach it (nobody else learns the group exists: 404), and only its members
    and its keys are within their reach; being staff is not needed, and gives nothing here.
    """
    user = _user(request)
    group = groups.managed_group(user, group_id)
    member_form, key_form = GroupMemberForm(), GroupKeyForm()
    new_key: tuple[ApiKey, str] | None = None
    action = request.POST.get("action") if request.method == "POST" else None
    if action == "add-member":
        member_form = GroupMemberForm(request.POST, group=group)
        if member_form.is_valid():
            groups.add_member(group, member_form.member, actor=user)
            return _done(request, group, f"{member_form.member.username} is a member now.")
    elif action == "remove-member":
        member = group.user_set.filter(pk=_int(request.POST.get("user"))).first()
        if member is not None and groups.remove_member(group, member, actor=user):
            return _done(request, group, f"{member.username} is no longer a member.")
        return _done(request, group, "That user is not a member.")
    elif action == "create-key":
        key_form = GroupKeyForm(request.POST)
        if key_form.is_valid():
            new_key = groups.issue_group_key(group, key_form.cleaned_data["name"], actor=user)
            key_form = GroupKeyForm()
    elif action == "revoke-key":
        key, revoked = groups.revoke_group_key(group, _int(request.POST.get("key")), actor=user)
        return _done(request, group, f"Key {key.display} is revoked." if revoked else "It was already revoked.")
    elif action is not None:
        return HttpResponse("Unknown action.", status=400, content_type="text/plain")
    status = 400 if member_form.errors or key_form.errors else 200
    return render(request, "accounts/group.html", _context(group, member_form, key_form, new_key), status=status)


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 18 else 0


def _done(request: HttpRequest, group: Group, message: str) -> HttpResponse:
    messages.success(request, message)
    return redirect("group", group_id=group.pk)


def _context(group: Group, member_form: Any, key_form: Any, new_key: tuple[ApiKey, str] | None) -> dict[str, Any]:
    return {
        "group": group,
        "members": groups.members(group),
        "keys": groups.group_keys(group),
        "models": list(group.models.order_by("public_id").values_list("public_id", flat=True)),
        "member_form": member_form,
        "key_form": key_form,
        "new_key": new_key[0] if new_key else None,
        "secret": new_key[1] if new_key else None,
    }
