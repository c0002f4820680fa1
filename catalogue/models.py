"""The catalogue: upstream providers and the models clients ask for by public id."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import timezone

from catalogue import keysource
from catalogue.secrets import decrypt, encrypt


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

    # The base URL and stored key as loaded from the database (see save), and whether saving
    # dropped the stored key because the URL changed.
    _loaded: tuple[str | None, str | None] | None = None
    key_dropped = False

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A stored key belongs to the address it was entered for: a new base URL without a key
        # entered with it drops the old one, so it can never be sent to wherever the URL now points.
        loaded = self._loaded
        if loaded and loaded[0] is not None and self.base_url != loaded[0] and self.api_key_encrypted == loaded[1]:
            self.api_key_encrypted = ""
            self.key_dropped = True
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "api_key_encrypted"}
        super().save(*args, **kwargs)
        self._loaded = (self.base_url, self.api_key_encrypted)

    @classmethod
    def from_db(cls, *args: Any, **kwargs: Any) -> Provider:
        provider = super().from_db(*args, **kwargs)
        provider._loaded = (provider.__dict__.get("base_url"), provider.__dict__.get("api_key_encrypted"))
        return provider

    def set_api_key(self, key: str) -> None:
        self.api_key_encrypted = encrypt(key) if key else ""

    def get_api_key(self) -> str:
        if self.api_key_env:
            # Checked again at use: a name stored before the rule, or by other means, is refused too.
            return os.environ.get(self.api_key_env, "") if keysource.allowed(self.api_key_env) else ""
        return decrypt(self.api_key_encrypted) if self.api_key_encrypted else ""

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_env or self.api_key_encrypted)


class LanguageModelQuerySet(models.QuerySet["LanguageModel"]):
    def usable(self) -> LanguageModelQuerySet:
        """The models anyone may call: enabled, of an enabled provider. The one definition of it."""
        return self.filter(enabled=True, provider__enabled=True).select_related("provider")

    def chat(self) -> LanguageModelQuerySet:
        return self.filter(is_chat=True)

    def allowed_for(self, allowed_models: list[str] | None) -> LanguageModelQuerySet:
        """Narrowed to a key's allowed models (an empty list allows every model)."""
        return self.filter(public_id__in=allowed_models) if allowed_models else self


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

    objects = LanguageModelQuerySet.as_manager()

    class Meta:
        ordering = ["public_id"]
        verbose_name = "model"

    def __str__(self) -> str:
        return self.public_id

    @property
    def usable(self) -> bool:
        """The instance-side twin of `LanguageModel.objects.usable()`."""
        return self.enabled and self.provider.enabled

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        million = Decimal(1_000_000)
        return (
            Decimal(prompt_tokens) * self.input_price_per_million
            + Decimal(completion_tokens) * self.output_price_per_million
        ) / million
