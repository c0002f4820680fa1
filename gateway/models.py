"""The response cache's PostgreSQL store (gateway.cache), used when no Redis is configured."""

from __future__ import annotations

from django.db import models


class CachedAnswer(models.Model):
    """One cached answer: a JSON answer, or a stream's chunks, with the usage it was charged."""

    key = models.CharField(max_length=64, primary_key=True)  # sha256 of the scope, model and normalized request
    value = models.JSONField()
    size = models.PositiveIntegerField()  # bytes of the value's JSON, for the total-size cap
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"cached answer {self.key[:12]} ({self.size} bytes)"
