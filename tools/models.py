"""MCP servers (the admin's, for everyone or chosen users and groups; each user's own) and the tool calls' record."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from catalogue.models import SecretBoundToUrl
from catalogue.secrets import decrypt, encrypt
from tools.mcp_client import SSE, STREAMABLE_HTTP, Endpoint


class McpServer(SecretBoundToUrl):
    """An MCP server reached over the network. `owner` null: a global server, registered by an admin.

    Its headers (a bearer token, an API key header) are stored encrypted like provider keys, and bound to
    the URL they were entered with as provider keys are (SecretBoundToUrl).
    """

    class Transport(models.TextChoices):
        STREAMABLE_HTTP = STREAMABLE_HTTP, "Streamable HTTP"
        SSE = SSE, "SSE (the older transport)"

    name = models.SlugField(max_length=64)
    url = models.URLField(max_length=500, help_text="The server's endpoint, e.g. https://mcp.example.com/mcp")
    transport = models.CharField(max_length=20, choices=Transport.choices, default=Transport.STREAMABLE_HTTP)
    headers_encrypted = models.TextField(blank=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="mcp_servers"
    )
    # Who may use a global server: everyone, or the users and groups listed.
    everyone = models.BooleanField(default=False, help_text="Every user may use this global server")
    allowed_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="shared_mcp_servers")
    allowed_groups = models.ManyToManyField(Group, blank=True, related_name="mcp_servers")
    allow_internal = models.BooleanField(
        default=False, help_text="May be on this machine or the internal network (admins' global servers only)"
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    bound_url_field = "url"
    bound_value_field = "headers_encrypted"

    class Meta:
        ordering = ["name"]
        verbose_name = "MCP server"
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="tools_mcp_server_unique_per_owner"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(owner__isnull=True), name="tools_mcp_server_unique_global"
            ),
            # A user's own server never reaches internal addresses: only an admin's global one may.
            models.CheckConstraint(
                condition=Q(owner__isnull=True) | Q(allow_internal=False), name="tools_mcp_internal_admins_only"
            ),
        ]

    def __str__(self) -> str:
        return self.name if self.owner_id is None else f"{self.name} ({self.owner})"

    @property
    def is_global(self) -> bool:
        return self.owner_id is None

    def set_headers(self, headers: dict[str, str]) -> None:
        self.headers_encrypted = encrypt(json.dumps(headers)) if headers else ""

    def get_headers(self) -> dict[str, str]:
        if not self.headers_encrypted:
            return {}
        stored = decrypt(self.headers_encrypted)
        return dict(json.loads(stored)) if stored else {}

    @property
    def header_names(self) -> list[str]:
        return sorted(self.get_headers())

    def endpoint(self) -> Endpoint:
        return Endpoint(
            self.url,
            transport=self.transport,
            headers=self.get_headers(),
            allow_internal=self.allow_internal and self.is_global,
            label=self.name,
        )


class ToolCall(models.Model):
    """One tool call run for a user: the ledger of tool use (what, where, how long, how it ended, how much)."""

    class Status(models.TextChoices):
        OK = "ok", "done"
        TOOL_ERROR = "tool_error", "the tool answered an error"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"
        REFUSED = "refused", "refused (the user's tool limit)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tool_calls")
    # The API key the call was made through (null: the browser chat).
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="tool_calls"
    )
    tool = models.CharField(max_length=200)
    kind = models.CharField(max_length=20)
    server = models.ForeignKey(McpServer, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls")
    duration_ms = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status.choices)
    result_size = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return f"{self.tool} ({self.status})"


class KeyTools(models.Model):
    """The server tools an API key may use, narrower than its user's; without a row, all its user may use."""

    key = models.OneToOneField("accounts.ApiKey", on_delete=models.CASCADE, primary_key=True, related_name="tool_grant")
    web_search = models.BooleanField(default=True)
    fetch = models.BooleanField(default=True)
    # MCP server names (among those the user may use); null: every one of them, []: none.
    mcp_servers = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name = "API key's tools"
        verbose_name_plural = "API keys' tools"

    def __str__(self) -> str:
        return f"tools of key {self.key_id}"


class ToolSettings(models.Model):
    """The admin's settings of the tools: one row (tools.site reads it). An empty field keeps the value of its
    environment variable, so a deployment configured by environment alone works as before."""

    class Engine(models.TextChoices):
        SEARXNG = "searxng", "SearXNG (SEARXNG_URL)"
        BRAVE = "brave", "Brave Search (BRAVE_SEARCH_API_KEY)"
        TAVILY = "tavily", "Tavily (TAVILY_API_KEY)"

    search_engine = models.CharField(
        max_length=20,
        blank=True,
        choices=Engine.choices,
        help_text="The web search engine. Empty: TOOLS_SEARCH_ENGINE's (SearXNG by default). Each needs its "
        "address or API key in the environment.",
    )
    max_steps = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Model calls in one reply that uses tools, at most. Empty: TOOLS_MAX_STEPS (8 by default).",
    )
    max_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="Seconds one reply may spend calling tools. Empty: TOOLS_MAX_SECONDS (300 by default).",
    )
    calls_per_hour = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Tool calls a user may make in an hour; 0: no limit. Empty: TOOLS_CALLS_PER_HOUR (no limit by "
        "default).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "tool settings"
        verbose_name_plural = "tool settings"
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="tools_settings_one_row")]

    def __str__(self) -> str:
        return "Tool settings"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.pk = 1
        super().save(*args, **kwargs)
