"""The catalogue: upstream providers and the models clients ask for by public id."""

from __future__ import annotations

import os
from collections.abc import Collection
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q, TextChoices
from django.utils import timezone

from catalogue import keysource
from catalogue.secrets import decrypt, encrypt


class SecretBoundToUrl(models.Model):
    """A model whose stored (encrypted) secret belongs to the URL it was entered for.

    Saving a new URL without a new secret entered with it drops the stored one, so it can never be sent
    to wherever the URL now points; `secret_dropped` then says so. Subclasses name the two fields.
    """

    bound_url_field: str
    bound_value_field: str  # the encrypted secret
    # The URL and secret as loaded from the database, and whether saving dropped the secret.
    _loaded: tuple[str | None, str | None] | None = None
    secret_dropped = False

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        url_field, secret_field = self.bound_url_field, self.bound_value_field
        loaded, secret = self._loaded, getattr(self, secret_field)
        if (
            loaded
            and loaded[0] is not None
            and getattr(self, url_field) != loaded[0]
            and secret
            and secret == loaded[1]
        ):
            setattr(self, secret_field, "")
            self.secret_dropped = True
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], secret_field}
        super().save(*args, **kwargs)
        self._loaded = (getattr(self, url_field), getattr(self, secret_field))

    @classmethod
    def from_db(cls, *args: Any, **kwargs: Any) -> Any:
        instance = super().from_db(*args, **kwargs)
        instance._loaded = (instance.__dict__.get(cls.bound_url_field), instance.__dict__.get(cls.bound_value_field))
        return instance


class Provider(SecretBoundToUrl):
    """An upstream API: OpenAI-compatible (chat completions and the rest), Anthropic's Messages API or
    Google's Gemini API (generativelanguage v1beta)."""

    class Kind(TextChoices):
        OPENAI = "openai", "OpenAI-compatible"
        ANTHROPIC = "anthropic", "Anthropic Messages API"
        GEMINI = "gemini", "Google Gemini API"

    class OutputCapParam(TextChoices):
        MAX_TOKENS = "max_tokens", "max_tokens"
        MAX_COMPLETION_TOKENS = "max_completion_tokens", "max_completion_tokens"

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.OPENAI)
    base_url = models.URLField(max_length=500, help_text="Up to and including /v1, e.g. https://api.openai.com/v1")
    responses_api = models.BooleanField(
        default=False, help_text="Speaks OpenAI's Responses API: /v1/responses requests go to it as they are"
    )
    # Many OpenAI-compatible servers (llama.cpp, vLLM) know only max_tokens; OpenAI's reasoning models only
    # max_completion_tokens. The cap is always sent, under the name this upstream knows.
    output_cap_param = models.CharField(
        max_length=30,
        choices=OutputCapParam.choices,
        default=OutputCapParam.MAX_TOKENS,
        help_text="The name under which this upstream takes the output cap",
    )
    # Either the name of an environment variable holding the key, or the key stored encrypted.
    api_key_env = models.CharField(max_length=100, blank=True)
    api_key_encrypted = models.TextField(blank=True, editable=False)
    connect_timeout = models.FloatField(default=5.0)
    read_timeout = models.FloatField(default=120.0)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    bound_url_field = "base_url"
    bound_value_field = "api_key_encrypted"

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def key_dropped(self) -> bool:
        return self.secret_dropped

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
        """The models anyone may call: enabled, with an enabled deployment of an enabled provider.

        The one definition of it. Each model comes with its routable deployments (`routes`).
        """
        routable = Deployment.objects.filter(enabled=True, provider__enabled=True).select_related("provider")
        return (
            self.filter(enabled=True, deployments__in=routable)
            .distinct()
            .select_related("provider")
            .prefetch_related(
                models.Prefetch("deployments", queryset=routable, to_attr="routes"),
                models.Prefetch("groups", queryset=Group.objects.only("pk"), to_attr="access_groups"),
                models.Prefetch(
                    "fallbacks",
                    queryset=Fallback.objects.select_related("to").order_by("position"),
                    to_attr="fallback_list",
                ),
            )
        )

    def open_to(self, group_ids: Collection[int]) -> LanguageModelQuerySet:
        """Those a member of `group_ids` may use: models open to everyone, or to one of these groups."""
        return self.filter(Q(groups__isnull=True) | Q(groups__in=list(group_ids))).distinct()

    def chat(self) -> LanguageModelQuerySet:
        return self.filter(kind=LanguageModel.Kind.CHAT)

    def of_kind(self, kind: str) -> LanguageModelQuerySet:
        return self.filter(kind=kind)

    def allowed_for(self, allowed_models: list[str] | None) -> LanguageModelQuerySet:
        """Narrowed to a key's allowed models (an empty list allows every model)."""
        return self.filter(public_id__in=allowed_models) if allowed_models else self


class LanguageModel(models.Model):
    """A model of the catalogue, as /v1/models shows it, served by one or more deployments.

    `provider` and `upstream_model` name the model's primary deployment (what `models add` sets);
    saving them keeps that Deployment row in step. Routing reads Deployment rows only.
    """

    public_id = models.CharField(max_length=200, unique=True, help_text="The id clients send; may contain '/'")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="models")
    upstream_model = models.CharField(max_length=200)
    context_length = models.PositiveIntegerField(default=4096)
    max_output_tokens = models.PositiveIntegerField(default=1024)

    class Kind(models.TextChoices):
        CHAT = "chat", "chat (messages in, a reply out: /v1/chat/completions)"
        TEXT = "text", "text (a prompt continued: /v1/completions)"
        EMBEDDING = "embedding", "embedding (/v1/embeddings)"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CHAT)
    # What the model accepts; a request asking for more is refused before it goes upstream.
    vision = models.BooleanField(default=False, help_text="Accepts images in messages")
    tools = models.BooleanField(default=True, help_text="Accepts tools (function calling)")
    reasoning = models.BooleanField(default=False, help_text="Thinks before answering (reasoning text)")
    json_output = models.BooleanField(default=True, help_text="Accepts response_format json_object / json_schema")
    owned_by = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=50, blank=True)
    creator = models.CharField(max_length=100, blank=True)
    display_name = models.CharField(max_length=200, blank=True, help_text="A readable name; blank: the public id")
    creator_logo_url = models.URLField(blank=True)
    censorship = models.CharField(
        max_length=50, blank=True, help_text="How the model's answers are filtered, e.g. censored or uncensored"
    )
    license_name = models.CharField(max_length=100, blank=True)
    license_url = models.URLField(blank=True)
    docs_url = models.URLField(blank=True)
    prompt_guide_url = models.URLField(blank=True)
    input_price_per_million = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    output_price_per_million = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    enabled = models.BooleanField(default=True)
    # Who may use the model: nobody chosen means everyone.
    groups = models.ManyToManyField(
        "auth.Group",
        blank=True,
        related_name="models",
        help_text="Only members of these groups see and use the model. None chosen: everyone.",
    )
    # The exact-match response cache (gateway.cache): how long an answer is kept (0: not cached), and
    # whether callers share the model's entries (else each user has their own).
    cache_ttl_seconds = models.PositiveIntegerField(default=0, help_text="Cache answers this long; 0: never.")
    cache_shared = models.BooleanField(
        default=False, help_text="Identical requests of different users share cached answers."
    )
    cache_unsafe = models.BooleanField(
        default=False,
        help_text="Also cache requests that are never cached otherwise (n > 1 sampled, store: false, tools we run).",
    )
    cache_hits_limited = models.BooleanField(
        default=True,
        help_text="Cached answers count against rate limits (requests and tokens per minute); off: they are free.",
    )

    class Routing(models.TextChoices):
        PRIORITY = "priority", "priority, then fewest in flight per weight"
        LATENCY = "latency", "priority, then lowest measured time to first token"

    routing = models.CharField(
        max_length=10,
        choices=Routing.choices,
        default=Routing.PRIORITY,
        help_text="How a deployment is chosen within the best priority (gateway.routing).",
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = LanguageModelQuerySet.as_manager()

    class Meta:
        ordering = ["public_id"]
        verbose_name = "model"

    def __str__(self) -> str:
        return self.public_id

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or {"provider", "upstream_model"} & set(update_fields):
            self.sync_primary_deployment()

    @property
    def is_chat(self) -> bool:
        return self.kind == self.Kind.CHAT

    @property
    def is_text(self) -> bool:
        return self.kind == self.Kind.TEXT

    @property
    def capabilities(self) -> dict[str, bool]:
        return {
            "vision": self.vision,
            "tools": self.tools,
            "reasoning": self.reasoning,
            "json_output": self.json_output,
        }

    def _allowed_groups(self) -> set[int]:
        groups = getattr(self, "access_groups", None)
        return {g.pk for g in (groups if groups is not None else self.groups.only("pk"))}

    def open_to(self, group_ids: Collection[int]) -> bool:
        """The instance-side twin of `LanguageModel.objects.open_to()` (reads `access_groups` when prefetched)."""
        allowed = self._allowed_groups()
        return not allowed or not allowed.isdisjoint(group_ids)

    @property
    def open_to_everyone(self) -> bool:
        """Restricted to no group: whoever asks need not have their groups looked up."""
        return not self._allowed_groups()

    @property
    def usable(self) -> bool:
        """The instance-side twin of `LanguageModel.objects.usable()`."""
        routes = getattr(self, "routes", None)
        if routes is None:
            routes = [d for d in self.deployments.select_related("provider") if d.enabled and d.provider.enabled]
        return self.enabled and bool(routes)

    def sync_primary_deployment(self) -> Deployment:
        """The primary deployment, created or moved to this model's provider and upstream model."""
        primary = self.deployments.filter(primary=True).first()
        if primary is None:
            # A deployment added earlier with the same provider and upstream name becomes the primary one.
            primary = self.deployments.filter(provider_id=self.provider_id, upstream_model=self.upstream_model).first()
        if primary is None:
            return Deployment.objects.create(
                model=self, provider_id=self.provider_id, upstream_model=self.upstream_model, primary=True
            )
        if (primary.provider_id, primary.upstream_model, primary.primary) != (
            self.provider_id,
            self.upstream_model,
            True,
        ):
            clash = self.deployments.filter(provider_id=self.provider_id, upstream_model=self.upstream_model)
            clash.exclude(pk=primary.pk).delete()
            primary.provider_id, primary.upstream_model, primary.primary = (
                self.provider_id,
                self.upstream_model,
                True,
            )
            primary.save(update_fields=["provider", "upstream_model", "primary"])
        return primary

    def fallbacks_for(self, reason: str) -> list[LanguageModel]:
        """The models to try instead, in order, for `reason` (a Fallback.Reason)."""
        listed = getattr(self, "fallback_list", None)
        if listed is None:
            listed = list(self.fallbacks.select_related("to").order_by("position"))
        return [f.to for f in listed if f.reason == reason]

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        million = Decimal(1_000_000)
        return (
            Decimal(prompt_tokens) * self.input_price_per_million
            + Decimal(completion_tokens) * self.output_price_per_million
        ) / million


class Deployment(models.Model):
    """One upstream serving a model: a provider and its name for the model, with routing weights.

    Routing takes, among enabled deployments that are not cooling down, the best (lowest) priority,
    spread by weight (see gateway.routing).
    """

    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="deployments")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="deployments")
    upstream_model = models.CharField(max_length=200)
    priority = models.PositiveSmallIntegerField(default=0, help_text="Lower is tried first.")
    weight = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Share of traffic among deployments of one priority."
    )
    max_concurrent = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Requests in flight at most (per worker)."
    )
    enabled = models.BooleanField(default=True)
    # The deployment the model's own provider and upstream model name (kept in step on the model's save).
    primary = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["model", "provider", "upstream_model"], name="deployment_unique_route"),
            models.UniqueConstraint(fields=["model"], condition=Q(primary=True), name="deployment_one_primary"),
        ]

    def __str__(self) -> str:
        return f"{self.provider.name}/{self.upstream_model}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        if self.primary:
            # Edited from the model's page: the model's own fields name its primary deployment.
            LanguageModel.objects.filter(pk=self.model_id).exclude(
                provider_id=self.provider_id, upstream_model=self.upstream_model
            ).update(provider_id=self.provider_id, upstream_model=self.upstream_model)


class Fallback(models.Model):
    """Another model to try, in order, when this one cannot answer (gateway.fallbacks)."""

    class Reason(models.TextChoices):
        FAILURE = "failure", "every deployment failed before answering"
        CONTEXT = "context", "the request does not fit the model's context"

    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="fallbacks")
    to = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="+", verbose_name="fallback model")
    reason = models.CharField(max_length=10, choices=Reason.choices, default=Reason.FAILURE)
    position = models.PositiveSmallIntegerField(default=0, help_text="Lower is tried first.")

    class Meta:
        ordering = ["model", "reason", "position"]
        constraints = [
            models.UniqueConstraint(fields=["model", "to", "reason"], name="fallback_unique"),
            models.CheckConstraint(condition=~Q(model=models.F("to")), name="fallback_not_itself"),
        ]

    def __str__(self) -> str:
        return f"{self.model} -> {self.to} ({self.reason})"
