"""Responses the Responses API kept (`store`, the default): each with the input it was given.

A response continuing another (`previous_response_id`) names its chain in `ancestors`, oldest
first, so a conversation is read back in one query however long it is, and a row stays the size
of its own turn. Rows belong to their user and go with them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class StoredResponse(models.Model):
    id = models.CharField(primary_key=True, max_length=64)  # resp_..., as the client saw it
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="stored_responses")
    model_public_id = models.CharField(max_length=200)
    previous_response_id = models.CharField(max_length=64, blank=True, default="")
    ancestors = models.JSONField(default=list, blank=True)  # the ids of earlier turns, oldest first
    input_items = models.JSONField(default=list, blank=True)  # this turn's input, each item with its id
    response = models.JSONField()  # the Response object as answered
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="stored_response_user_recent")]

    def __str__(self) -> str:
        return self.id
