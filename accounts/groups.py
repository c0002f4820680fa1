"""Groups of users: Django's auth Group, with its settings (accounts.GroupProfile).

A user is in any number of groups. A model may be restricted to groups (catalogue), a group may
have limits and a budget its members share (usage), and keys of its own for a team's scripts.
Members come from admins, the group's managers (its page, without being staff), `manage.py groups`,
and single sign-on: the identity provider's groups claim (OIDC_GROUPS_CLAIM) at each sign-in.

Every change made by a person (a manager, an admin, a sign-in) is written to the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404

from accounts import audit, keys
from accounts.models import ApiKey, GroupProfile, SsoMembership, User
from catalogue.models import LanguageModel, LanguageModelQuerySet

NAME_CHARS = Group._meta.get_field("name").max_length or 150
# Group service accounts are named this and the group's id: no sign-up form accepts a ':' in a username.
SERVICE_PREFIX = "group:"


def group_ids(user_id: int) -> frozenset[int]:
    """The groups a user is a member of."""
    return frozenset(User.groups.through.objects.filter(user_id=user_id).values_list("group_id", flat=True))


def people() -> QuerySet[User]:
    """Users who are people, not a group's service account."""
    return User.objects.exclude(username__startswith=SERVICE_PREFIX)


def usable_models_for(user: User) -> LanguageModelQuerySet:
    """The usable models `user` may see and use (for pages and /api/; the /v1 path reads its cache)."""
    return LanguageModel.objects.usable().open_to(group_ids(user.pk))


def profile_of(group: Group) -> GroupProfile:
    return GroupProfile.objects.get_or_create(group=group)[0]


def clean_name(name: str) -> str:
    """A group's name as given, or ValueError saying what is wrong with it."""
    name = name.strip()
    if not name:
        raise ValueError("a group needs a name")
    if len(name) > NAME_CHARS:
        raise ValueError(f"a group's name has at most {NAME_CHARS} characters")
    if "\x00" in name:
        raise ValueError("a group's name may not contain a NUL character")
    return name


def add_group(name: str) -> tuple[Group, bool]:
    """The group named `name`, created if new (the bool says so)."""
    group, created = Group.objects.get_or_create(name=clean_name(name))
    profile_of(group)
    return group, created


def _record(actor: User | None, obj: Group | ApiKey, flag: int, message: str) -> None:
    if actor is not None:
        audit.record(actor, obj, flag, message)


def add_member(group: Group, user: User, *, actor: User | None = None, default: bool = False) -> bool:
    """Put `user` in `group` (False when already there); `default`: the group pays for their requests."""
    with transaction.atomic():
        added = not user.groups.filter(pk=group.pk).exists()
        if added:
            user.groups.add(group)
            _record(actor, group, audit.CHANGE, f"Added member {user.username}.")
        if default and user.default_group_id != group.pk:
            user.default_group = group
            user.save(update_fields=["default_group"])
            _record(actor, group, audit.CHANGE, f"Bills {user.username}'s requests to this group.")
    return added


def remove_member(group: Group, user: User, *, actor: User | None = None) -> bool:
    """Take `user` out of `group` (False when not in it); it stops paying for them."""
    with transaction.atomic():
        removed = user.groups.filter(pk=group.pk).exists()
        if removed:
            user.groups.remove(group)
            SsoMembership.objects.filter(user=user, group=group).delete()
            _record(actor, group, audit.CHANGE, f"Removed member {user.username}.")
        if user.default_group_id == group.pk:
            user.default_group = None
            user.save(update_fields=["default_group"])
    return removed


def add_manager(group: Group, user: User, *, actor: User | None = None) -> bool:
    profile = profile_of(group)
    if profile.managers.filter(pk=user.pk).exists():
        return False
    profile.managers.add(user)
    _record(actor, group, audit.CHANGE, f"Made {user.username} a manager.")
    return True


def managed_by(user: User) -> list[Group]:
    """The groups `user` manages."""
    return list(Group.objects.filter(profile__managers=user).order_by("name"))


def managed_group(user: User, group_id: int) -> Group:
    """A group `user` manages; any other answers 404, as if it did not exist."""
    group = Group.objects.filter(pk=group_id, profile__managers=user).first()
    if group is None or not user.is_active:
        raise Http404("No such group.")
    return group


def members(group: Group) -> list[User]:
    return list(group.user_set.order_by("username"))


# --- keys -----------------------------------------------------------------------------------------


def service_user(group: Group) -> User:
    """The account a group's keys call as, made with its first key.

    Its name has a ':', which no sign-up form accepts, so nobody can sign up as it; it has no
    password and is in no group: what its keys may use comes from the key's group.
    """
    with transaction.atomic():
        profile = GroupProfile.objects.select_for_update().get(pk=profile_of(group).pk)
        if profile.service_user is None:
            user = User(username=f"{SERVICE_PREFIX}{group.pk}", first_name=group.name[:150])
            user.set_unusable_password()
            user.save()
            profile.service_user = user
            profile.save(update_fields=["service_user"])
        return profile.service_user


def retire_service_user(sender: object, instance: Group, **kwargs: object) -> None:
    """A deleted group's service account signs in nowhere and calls nothing (its usage rows stay)."""
    User.objects.filter(username=f"{SERVICE_PREFIX}{instance.pk}").update(is_active=False)


def issue_group_key(group: Group, name: str, *, actor: User | None = None) -> tuple[ApiKey, str]:
    """A new key of the group; the secret is returned once and never stored."""
    with transaction.atomic():
        key, secret = keys.create_key(service_user(group), name.strip())
        key.group = group
        key.save(update_fields=["group"])
        _record(actor, key, audit.ADDITION, f"Created for group {group.name} ({key.display}).")
    return key, secret


def group_keys(group: Group) -> list[ApiKey]:
    return list(ApiKey.objects.filter(group=group))


def revoke_group_key(group: Group, key_id: int, *, actor: User | None = None) -> tuple[ApiKey, bool]:
    """Revoke one of the group's keys; another group's or a person's key answers 404."""
    key = ApiKey.objects.filter(pk=key_id, group=group).first()
    if key is None:
        raise Http404("No such key.")
    revoked = keys.revoke(key)
    if revoked:
        _record(actor, key, audit.CHANGE, f"Revoked for group {group.name} ({key.display}).")
    return key, revoked


# --- single sign-on ---------------------------------------------------------------------------------


def claimed_names(value: object) -> list[str]:
    """The group names of a groups claim: a list of names, or one name; anything else names none."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [name.strip() for name in value if isinstance(name, str) and name.strip()]


def sync_sso_groups(user: User, names: Iterable[str]) -> None:
    """Memberships as the identity provider claims them at a sign-in.

    The user joins each existing group the claim names (a name no group has is ignored: the provider
    cannot create groups), and leaves those single sign-on put them in that the claim no longer
    names. Memberships an admin or a manager gave are kept.
    """
    claimed = set(Group.objects.filter(name__in=list(names)))
    with transaction.atomic():
        granted = {m.group for m in SsoMembership.objects.select_related("group").filter(user=user)}
        current = set(user.groups.all())
        for group in claimed - current:
            user.groups.add(group)
            SsoMembership.objects.get_or_create(user=user, group=group)
            audit.record(user, group, audit.CHANGE, f"Added member {user.username} (single sign-on).")
        for group in granted - claimed:
            remove_member(group, user)
            audit.record(user, group, audit.CHANGE, f"Removed member {user.username} (single sign-on).")
