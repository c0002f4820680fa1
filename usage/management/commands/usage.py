"""`usage rollup [--batch N]`: fold every ledger row written since the last run into the daily rollup."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from usage.models import RollupState
from usage.rollup import BATCH, STATE, catch_up


class Command(BaseCommand):
    help = "Usage analytics: `rollup` folds the ledger's new rows into the daily rollup the analytics pages read."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        rollup = commands.add_parser("rollup", help="Bring the daily rollup up to date with the ledger.")
        rollup.add_argument("--batch", type=int, default=BATCH, help="Ledger rows per step (one transaction).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch"] < 1:
            raise CommandError("--batch must be 1 or more")
        folded = catch_up(batch=options["batch"])
        state = RollupState.objects.filter(name=STATE).first()
        upto = state.last_id if state else 0
        self.stdout.write(f"the rollup now covers ledger rows up to id {upto} ({folded} more ids)")
