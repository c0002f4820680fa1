from __future__ import annotations

from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import User


class Command(BaseCommand):
    help = "Manage user accounts."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Create a user, or update the password and role of an existing one.")
        add.add_argument("username")
        add.add_argument("--password", required=True)
        add.add_argument("--admin", action="store_true", help="Make the user a superuser (staff).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "add":
            self._add(options["username"], options["password"], options["admin"])

    @transaction.atomic
    def _add(self, username: str, password: str, admin: bool) -> None:
        username = username.strip()
        field = User._meta.get_field("username")
        try:
            field.run_validators(username)
            if not username:
                raise ValidationError("the username is empty")
        except ValidationError as exc:
            raise CommandError(f"invalid username {username!r}: {' '.join(exc.messages)}") from None
        user = User.objects.filter(username=username).first()
        candidate = user or User(username=username)
        try:
            validate_password(password, candidate)
        except ValidationError as exc:
            raise CommandError(f"password refused: {' '.join(exc.messages)}") from None
        created = user is None
        candidate.set_password(password)
        if admin:
            candidate.is_staff = candidate.is_superuser = True
        candidate.save()
        role = "admin" if candidate.is_superuser else "user"
        self.stdout.write(f"{'created' if created else 'updated'} {role} {username}")
