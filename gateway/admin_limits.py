"""Admin for rate limits and budgets (imported by gateway.admin)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from gateway.limits_models import Limit


@admin.register(Limit)
class LimitAdmin(admin.ModelAdmin[Limit]):
    list_display = (
        "__str__",
        "scope",
        "requests_per_minute",
        "tokens_per_minute",
        "budget_usd",
        "budget_period",
        "updated_at",
    )
    list_filter = ("scope", "budget_period")
    search_fields = ("user__username", "api_key__user__username", "api_key__name", "api_key__prefix")
    autocomplete_fields = ("user",)
    raw_id_fields = ("api_key",)
    readonly_fields = ("scope", "updated_at")
    fieldsets = (
        (
            "Applies to",
            {
                "fields": ("user", "api_key", "scope"),
                "description": "Neither user nor key: the default for every user (one such row). "
                "A user's row overrides the default field by field; a key's row adds limits of that key alone.",
            },
        ),
        ("Rate limits", {"fields": ("requests_per_minute", "tokens_per_minute")}),
        ("Budget", {"fields": ("budget_usd", "budget_period")}),
        (None, {"fields": ("updated_at",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Limit]:
        return super().get_queryset(request).select_related("user", "api_key", "api_key__user")
