"""The audit log: Django admin's LogEntry, also for what people do outside the admin.

The admin writes its own entries (every add, change, delete, and our actions through log_change);
this records the security-relevant acts done elsewhere, such as a user minting or revoking one of
their own API keys, so the admin's "Log entries" list tells the whole story.
"""

from __future__ import annotations

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db.models import Model

from accounts.models import User

__all__ = ["ADDITION", "CHANGE", "DELETION", "record"]


def record(actor: User, obj: Model, action_flag: int, message: str) -> None:
    LogEntry.objects.log_actions(actor.pk, [obj], action_flag, change_message=message, single_object=True)
