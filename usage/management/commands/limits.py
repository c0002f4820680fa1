"""`limits set (--user USERNAME | --key KEY | --group NAME | --default) [--rpm N] [--tpm N]
[--budget USD --period day|month]`."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.keys import find_by_secret_or_prefix
from accounts.models import User
from usage.models import Limit


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise CommandError(f"expected a whole number, got {value!r}") from None
    if number < 0:
        raise CommandError(f"expected 0 or more, got {number}")
    return number


def _usd(value: str) -> Decimal:
    try:
        amount = Decimal(value.strip().removeprefix("$"))
    except InvalidOperation:
        raise CommandError(f"--budget must be an amount in USD, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise CommandError(f"--budget must be 0 or more, got {value!r}")
    if amount >= Decimal("100000000") or amount != amount.quantize(Decimal("0.0001")):
        raise CommandError(f"--budget must be below 100000000 with at most 4 decimals, got {value!r}")
    return amount


def describe(limit: Limit) -> str:
    inherits = limit.user_id is not None  # a user's unset value follows the default

    def value(number: Any, unit: str) -> str:
        if number is None:
            return f"{unit}: {'default' if inherits else 'none'}"
        return f"{unit}: {number or 'no limit'}"

    if limit.budget_usd is None:
        budget = value(None, "budget")
    elif not limit.budget_usd:
        budget = "budget: no limit"
    else:
        budget = f"budget: ${limit.budget_usd:.2f} per {limit.budget_period}"
    parts = [value(limit.requests_per_minute, "rpm"), value(limit.tokens_per_minute, "tpm"), budget]
    return f"{limit}: {', '.join(parts)}"


class Command(BaseCommand):
    help = "Rate limits and spending budgets (0 means no limit; a user's unset value follows the default)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        for name, text in (("set", "Set limits; options not given stay as they are."), ("show", "Show limits.")):
            action = sub.add_parser(name, help=text)
            who = action.add_mutually_exclusive_group(required=True)
            who.add_argument("--user", metavar="USERNAME")
            who.add_argument("--key", metavar="KEY", help="the full key, or its visible prefix")
            who.add_argument("--group", metavar="NAME", help="a group: shared by every request billed to it")
            who.add_argument("--default", action="store_true", help="the default that applies to every user")
            if name == "set":
                action.add_argument("--rpm", type=_count, help="requests per minute")
                action.add_argument("--tpm", type=_count, help="tokens (prompt + completion) per minute")
                action.add_argument("--budget", type=_usd, metavar="USD", help="spending cap per period")
                action.add_argument("--period", choices=[p.value for p in Limit.Period], help="budget period")

    def handle(self, *args: Any, **options: Any) -> None:
        limit = self._find(options)
        if options["action"] == "set":
            changes = {
                "requests_per_minute": options["rpm"],
                "tokens_per_minute": options["tpm"],
                "budget_usd": options["budget"],
                "budget_period": options["period"],
            }
            changes = {field: value for field, value in changes.items() if value is not None}
            if not changes:
                raise CommandError("nothing to set: give --rpm, --tpm, --budget or --period")
            for field, value in changes.items():
                setattr(limit, field, value)
            limit.save()
        self.stdout.write(describe(limit))

    def _find(self, options: dict[str, Any]) -> Limit:
        if options["user"] is not None:
            user = User.objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"no user named {options['user']!r}")
            return Limit.objects.filter(user=user).first() or Limit(user=user)
        if options["group"] is not None:
            group = Group.objects.filter(name=options["group"].strip()).first()
            if group is None:
                raise CommandError(f"no group named {options['group']!r} (add it with: groups add)")
            return Limit.objects.filter(group=group).first() or Limit(group=group)
        if options["key"] is not None:
            key = find_by_secret_or_prefix(options["key"])
            if key is None:
                raise CommandError("no such API key (give the full key or its unique visible prefix)")
            return Limit.objects.filter(api_key=key).first() or Limit(api_key=key)
        return Limit.objects.filter(scope=Limit.Scope.DEFAULT).first() or Limit()
