from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.keys import create_key, find_by_secret_or_prefix, revoke
from accounts.models import User


class Command(BaseCommand):
    help = "Issue and revoke API keys for the /v1 API."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Issue a key; the key alone is the last line of the output.")
        create.add_argument("username")
        create.add_argument("--name", default="", help="A label to recognise the key by.")
        create.add_argument("--expires-in-days", type=int, help="Days until the key stops working.")
        rev = sub.add_parser("revoke", help="Revoke a key, given in full or by its visible prefix (sk-XXXXXXXX).")
        rev.add_argument("key")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "create":
            self._create(options["username"], options["name"], options["expires_in_days"])
        else:
            self._revoke(options["key"])

    def _create(self, username: str, name: str, days: int | None) -> None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive; their keys would not work")
        if days is not None and days < 1:
            raise CommandError(f"--expires-in-days must be at least 1, got {days}")
        if len(name) > 100:
            raise CommandError("--name is longer than 100 characters")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        key, secret = create_key(user, name, expires_at=expires_at)
        until = f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
        self.stdout.write(f"created key {key.display} for {username}{until}; it is shown only now:")
        self.stdout.write(secret)

    def _revoke(self, value: str) -> None:
        key = find_by_secret_or_prefix(value.strip())
        if key is None:
            raise CommandError("no such key (give the full key or its visible prefix, e.g. sk-AbCdEfGh)")
        if revoke(key):
            self.stdout.write(f"revoked {key.display} of {key.user.username}")
        else:
            self.stdout.write(f"{key.display} was already revoked")
