"""The audit log: Django admin's LogEntry, also for what people do outside the admin.

The admin writes its own entries (every add, change, delete, and our actions through log_change);
this records the security-relevant acts done elsewhere, such as a user minting or revoking one of
their own API keys or making an invite link, so the admin's "Log entries" list tells the whole story.
"""

from __future__ import annotations

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model

from accounts.models import User

__all__ = ["ADDITION", "CHANGE", "DELETION", "record"]


def record(actor: User, obj: Model, action_flag: int, message: str) -> None:
    # The content type is read, not taken from the process-wide cache: these entries are rare, and a
    # cached id outlives a content-types table that was emptied and refilled under a running server.
    meta = obj._meta
    content_type = ContentType.objects.get(app_label=meta.app_label, model=meta.model_name)
    LogEntry.objects.create(
        user_id=actor.pk,
        content_type=content_type,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=action_flag,
        change_message=message,
    )
