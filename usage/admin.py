"""Admin for usage: the ledger (read-only, with an overview page) and rate limits and budgets."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from usage import queries
from usage.models import Limit, UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin[UsageRecord]):
    """The ledger, read-only: filter by user, key, model, date; the overview page sums it up."""

    list_display = (
        "created_at",
        "user",
        "key",
        "model_public_id",
        "source",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "latency_ms",
        "status",
    )
    list_filter = (
        "source",
        "status",
        "created_at",
        ("user", admin.RelatedOnlyFieldListFilter),
        ("api_key", admin.RelatedOnlyFieldListFilter),
        ("model", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("user__username", "model_public_id", "api_key__prefix", "api_key__name")
    date_hierarchy = "created_at"
    list_select_related = ("user", "api_key")
    change_list_template = "admin/usage/usagerecord/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="key", ordering="api_key")
    def key(self, record: UsageRecord) -> str:
        return record.api_key.display if record.api_key else "—"

    def get_urls(self) -> list[URLPattern]:
        overview = path("overview/", self.admin_site.admin_view(self.overview_view), name="usage_usage_overview")
        return [overview, *super().get_urls()]

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        days = queries.CHART_DAYS
        _, since = queries.chart_window(days)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Usage overview, last {days} days",
            "opts": self.model._meta,
            "chart": queries.daily_tokens_by_model(None, days),
            "totals": queries.usage_summary(None, since),
            "top_users": queries.top_users(days),
            "changelist_url": reverse("admin:usage_usagerecord_changelist"),
            "days": days,
        }
        return TemplateResponse(request, "admin/usage/usagerecord/overview.html", context)


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
    search_fields = ("user__username", "api_key__user__username", "api_key__name", "api_key__prefix", "group__name")
    autocomplete_fields = ("user", "group")
    raw_id_fields = ("api_key",)
    readonly_fields = ("scope", "updated_at")
    fieldsets = (
        (
            "Applies to",
            {
                "fields": ("user", "api_key", "group", "scope"),
                "description": "None of user, key and group: the default for every user (one such row). "
                "A user's row overrides the default field by field; a key's row adds limits of that key alone; "
                "a group's row is shared by every request billed to the group.",
            },
        ),
        ("Rate limits", {"fields": ("requests_per_minute", "tokens_per_minute")}),
        ("Budget", {"fields": ("budget_usd", "budget_period")}),
        (None, {"fields": ("updated_at",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Limit]:
        return super().get_queryset(request).select_related("user", "api_key", "api_key__user", "group")
