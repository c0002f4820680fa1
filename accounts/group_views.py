"""The pages of groups: one's groups, and a group's page where its managers manage members and keys.

Only a group's managers reach its page (nobody else learns it exists: 404), and only its members and
its keys are within their reach; being staff is not needed, and gives nothing here.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts import groups
from accounts.forms import GroupKeyForm, GroupMemberForm
from accounts.models import ApiKey, User


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


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
    """GET shows the group; POST does one `action`: add-member, remove-member, create-key, revoke-key."""
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
