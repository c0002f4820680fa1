"""Admin for MCP servers (headers write-only: typed in, never shown) and the ledger of tool calls (read-only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from tools import services
from tools.models import KeyTools, McpServer, ToolCall, ToolSettings


class McpServerForm(forms.ModelForm[McpServer]):
    headers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text="One 'Name: value' a line (a bearer token: 'Authorization: Bearer ...'). Stored encrypted and "
        "never shown again; leave empty to keep the stored headers. They belong to the URL: changing the URL "
        "removes them, so enter them again with the new URL.",
    )
    clear_headers = forms.BooleanField(label="Remove the stored headers", required=False)
    url = forms.URLField(max_length=500, assume_scheme="https", help_text=McpServer._meta.get_field("url").help_text)

    class Meta:
        model = McpServer
        fields = (
            "name",
            "url",
            "transport",
            "headers",
            "clear_headers",
            "everyone",
            "allowed_users",
            "allowed_groups",
            "allow_internal",
            "enabled",
        )

    def clean_headers(self) -> dict[str, str] | None:
        text = self.cleaned_data.get("headers", "")
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            return None
        try:
            return dict(services.parse_header(line) for line in lines)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages[0]) from None

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if cleaned.get("allow_internal") and self.instance.owner_id is not None:
            self.add_error("allow_internal", "Only global servers may be on internal addresses.")
        return cleaned

    def save(self, commit: bool = True) -> McpServer:
        server = super().save(commit=False)
        if self.cleaned_data.get("clear_headers"):
            server.set_headers({})
        elif self.cleaned_data.get("headers") is not None:
            server.set_headers(self.cleaned_data["headers"])
        if commit:
            server.save()
            self.save_m2m()
        return server


@admin.register(McpServer)
class McpServerAdmin(admin.ModelAdmin[McpServer]):
    form = McpServerForm
    list_display = ("name", "url", "transport", "owner", "everyone", "allow_internal", "enabled", "has_headers")
    list_filter = ("enabled", "transport", "everyone", "allow_internal")
    search_fields = ("name", "url", "owner__username")
    filter_horizontal = ("allowed_users", "allowed_groups")

    @admin.display(boolean=True, description="headers stored")
    def has_headers(self, server: McpServer) -> bool:
        return bool(server.headers_encrypted)

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        # The admin manages the global servers; users' own ones are theirs (listed, never editable here).
        return super().get_queryset(request).select_related("owner")

    def has_change_permission(self, request: HttpRequest, obj: McpServer | None = None) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or obj.is_global)


@admin.register(ToolCall)
class ToolCallAdmin(admin.ModelAdmin[ToolCall]):
    list_display = ("created_at", "user", "api_key", "tool", "kind", "server", "status", "duration_ms", "result_size")
    list_filter = ("status", "kind", ("server", admin.RelatedOnlyFieldListFilter), "created_at")
    search_fields = ("tool", "user__username", "server__name")
    date_hierarchy = "created_at"
    list_select_related = ("user", "server", "api_key")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ToolCall | None = None) -> bool:
        return False


class KeyToolsForm(forms.ModelForm[KeyTools]):
    mcp_servers = forms.JSONField(
        required=False,
        help_text='The MCP servers (names) this key may use, e.g. ["docs"]; [] for none; empty: all its user may use.',
    )

    class Meta:
        model = KeyTools
        fields = ("key", "web_search", "fetch", "mcp_servers")

    def clean_mcp_servers(self) -> list[str] | None:
        value = self.cleaned_data.get("mcp_servers")
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
            raise forms.ValidationError('A list of server names, e.g. ["docs", "search"].')
        return value


@admin.register(KeyTools)
class KeyToolsAdmin(admin.ModelAdmin[KeyTools]):
    """Keys narrowed to fewer server tools than their users may use."""

    form = KeyToolsForm
    list_display = ("key", "web_search", "fetch", "mcp_servers")
    raw_id_fields = ("key",)


@admin.register(ToolSettings)
class ToolSettingsAdmin(admin.ModelAdmin[ToolSettings]):
    """One row: the list opens it (made with every field empty, the environment's values, the first time)."""

    fields = ("search_engine", "max_steps", "max_seconds", "calls_per_hour")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, object] | None = None) -> HttpResponse:
        ToolSettings.objects.get_or_create(pk=1)
        return HttpResponseRedirect(reverse("admin:tools_toolsettings_change", args=[1]))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ToolSettings | None = None) -> bool:
        return False
