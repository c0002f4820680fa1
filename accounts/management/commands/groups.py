"""`groups add NAME`, `groups add-member NAME USERNAME [--default] [--manager]`, `groups remove-member NAME USERNAME`,
`groups list`."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import groups
from accounts.models import User


def _group(name: str) -> Group:
    group = Group.objects.filter(name=name.strip()).first()
    if group is None:
        raise CommandError(f"no group named {name!r} (add it with: groups add)")
    return group


def _user(username: str) -> User:
    user = User.objects.filter(username=username.strip()).first()
    if user is None:
        raise CommandError(f"no user named {username!r}")
    return user


class Command(BaseCommand):
    help = "Groups of users: who may use restricted models, who shares a group's limits and budget."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Create a group (nothing happens when it exists).")
        add.add_argument("name")
        member = sub.add_parser("add-member", help="Put a user in a group.")
        member.add_argument("name")
        member.add_argument("username")
        member.add_argument("--default", action="store_true", help="The group pays for the user's requests.")
        member.add_argument("--manager", action="store_true", help="The user manages the group's members and keys.")
        remove = sub.add_parser("remove-member", help="Take a user out of a group.")
        remove.add_argument("name")
        remove.add_argument("username")
        sub.add_parser("list", help="List the groups with their members and managers.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "add":
            self._add(options["name"])
        elif action == "add-member":
            self._add_member(options["name"], options["username"], options["default"], options["manager"])
        elif action == "remove-member":
            self._remove_member(options["name"], options["username"])
        else:
            self._list()

    def _add(self, name: str) -> None:
        try:
            group, created = groups.add_group(name)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{'created' if created else 'exists:'} group {group.name}")

    def _add_member(self, name: str, username: str, default: bool, manager: bool) -> None:
        group, user = _group(name), _user(username)
        added = groups.add_member(group, user, default=default)
        if manager:
            groups.add_manager(group, user)
        roles = [role for role, given in (("default group", default), ("manager", manager)) if given]
        note = f" ({', '.join(roles)})" if roles else ""
        self.stdout.write(f"{'added' if added else 'already a member:'} {user.username} in {group.name}{note}")

    def _remove_member(self, name: str, username: str) -> None:
        group, user = _group(name), _user(username)
        removed = groups.remove_member(group, user)
        self.stdout.write(f"{'removed' if removed else 'not a member:'} {user.username} from {group.name}")

    def _list(self) -> None:
        listed = list(Group.objects.order_by("name").prefetch_related("user_set", "profile__managers"))
        if not listed:
            self.stdout.write("no groups")
        for group in listed:
            profile = groups.profile_of(group)
            managers = ", ".join(sorted(u.username for u in profile.managers.all())) or "none"
            names = ", ".join(sorted(u.username for u in group.user_set.all())) or "none"
            self.stdout.write(f"{group.name}\tmembers: {names}\tmanagers: {managers}")
