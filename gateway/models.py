from __future__ import annotations

import os
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from gateway.secrets import decrypt, encrypt


class Provider(models.Model):
    """An upstream OpenAI-compatible chat-completions API."""

    name = models.SlugField(max_length=64, unique=True)
    base_url = models.URLField(max_length=500, help_text="Up to and including /v1, e.g. https://api.openai.com/v1")
    # Either the name of an environment variable holding the key, or the key stored encrypted.
    api_key_env = models.CharField(max_length=100, blank=True)
    api_key_encrypted = models.TextField(blank=True, editable=False)
    connect_timeout = models.FloatField(default=5.0)
    read_timeout = models.FloatField(default=120.0)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def set_api_key(self, key: str) -> None:
        self.api_key_encrypted = encrypt(key) if key else ""

    def get_api_key(self) -> str:
        if self.api_key_env:
            return os.environ.get(self.api_key_env, "")
        return decrypt(self.api_key_encrypted) if self.api_key_encrypted else ""

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_env or self.api_key_encrypted)


class LanguageModel(models.Model):
    """A model of the catalogue, as /v1/models shows it."""

    public_id = models.CharField(max_length=200, unique=True, help_text="The id clients send; may contain '/'")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="models")
    upstream_model = models.CharField(max_length=200)
    context_length = models.PositiveIntegerField(default=4096)
    max_output_tokens = models.PositiveIntegerField(default=1024)
    is_chat = models.BooleanField(default=True)
    owned_by = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=50, blank=True)
    input_price_per_million = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    output_price_per_million = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["public_id"]
        verbose_name = "model"

    def __str__(self) -> str:
        return self.public_id

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        million = Decimal(1_000_000)
        return (
            Decimal(prompt_tokens) * self.input_price_per_million
            + Decimal(completion_tokens) * self.output_price_per_million
        ) / million


class UsageRecord(models.Model):
    """One row per generation, from the API or the browser chat: the ledger limits and charts read."""

    class Source(models.TextChoices):
        API = "api", "API"
        CHAT = "chat", "Browser chat"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage")
    api_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL)
    model = models.ForeignKey(LanguageModel, null=True, blank=True, on_delete=models.SET_NULL)
    model_public_id = models.CharField(max_length=200)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    usage_estimated = models.BooleanField(default=False)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal("0"))
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.PositiveSmallIntegerField(default=200)
    error_code = models.CharField(max_length=64, blank=True)
    stream = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "created_at"]),
            models.Index(fields=["api_key", "created_at"]),
            models.Index(fields=["model", "created_at"]),
            models.Index(fields=["created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.model_public_id} {self.prompt_tokens}+{self.completion_tokens} tokens ({self.status})"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# Registered with the gateway app from its own module (limits configuration, issue 7).
from gateway.limits_models import Limit  # noqa: E402

__all__ = ["LanguageModel", "Limit", "Provider", "UsageRecord"]
