"""Stored responses in the admin: read-only (they are their owners' data, answered by the API)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from responses.models import StoredResponse


@admin.register(StoredResponse)
class StoredResponseAdmin(admin.ModelAdmin[StoredResponse]):
    list_display = ("id", "user", "model_public_id", "previous_response_id", "created_at")
    list_filter = ("model_public_id",)
    search_fields = ("id", "user__username")
    date_hierarchy = "created_at"
    list_select_related = ("user",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: StoredResponse | None = None) -> bool:
        return False
