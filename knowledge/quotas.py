"""What one user may keep: KNOWLEDGE_MAX_FILE_BYTES per upload, KNOWLEDGE_QUOTA_BYTES and KNOWLEDGE_QUOTA_FILES in all.

    check_upload(user, size)   # in the transaction that stores the file: QuotaExceeded if it may not

The check locks the user's row, so two uploads at once cannot both pass on the same room.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Sum

from accounts.models import User
from knowledge.models import StoredFile


class QuotaExceeded(Exception):
    """An upload past a limit; the message says which and what is left, fit to show to the user."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Usage:
    bytes: int
    files: int
    quota_bytes: int
    quota_files: int


def usage(user: User) -> Usage:
    """What the user keeps, and their limits (the Knowledge page shows both)."""
    totals = StoredFile.objects.filter(owner=user).aggregate(bytes=Sum("bytes"), files=Count("id"))
    return Usage(totals["bytes"] or 0, totals["files"], settings.KNOWLEDGE_QUOTA_BYTES, settings.KNOWLEDGE_QUOTA_FILES)


def check_upload(user: User, size: int) -> None:
    """QuotaExceeded if a file of `size` bytes is too large or would take the user past a quota.
    Call inside the transaction that stores it."""
    if size > settings.KNOWLEDGE_MAX_FILE_BYTES:
        raise QuotaExceeded(
            f"The file is {size} bytes; files may be at most {settings.KNOWLEDGE_MAX_FILE_BYTES} bytes.",
            "file_too_large",
        )
    User.objects.select_for_update().filter(pk=user.pk).first()
    kept = usage(user)
    if kept.files + 1 > kept.quota_files:
        raise QuotaExceeded(
            f"You keep {kept.files} files, the most allowed; delete some before uploading more.", "quota_exceeded"
        )
    if kept.bytes + size > kept.quota_bytes:
        raise QuotaExceeded(
            f"This file ({size} bytes) would take your files past their quota of {kept.quota_bytes} bytes "
            f"({kept.bytes} used); delete some before uploading more.",
            "quota_exceeded",
        )
