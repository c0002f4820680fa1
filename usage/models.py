"""The usage ledger (one row per generation) and limit settings (a default, per user, per key).

The counters limits are enforced with live in Redis or in process; see usage.limits.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from catalogue.models import LanguageModel


class UsageRecord(models.Model):
    """One row per generation, from the API or the browser chat: the ledger limits and charts read."""

    class Source(models.TextChoices):
        API = "api", "API"
        CHAT = "chat", "Browser chat"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage")
    api_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL)
    # The group the request was billed to (its key's group, or the user's default group), if any.
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model = models.ForeignKey(LanguageModel, null=True, blank=True, on_delete=models.SET_NULL)
    model_public_id = models.CharField(max_length=200)  # as requested
    # A fallback's public id when another model than the requested one answered (`model` is then the fallback).
    answered_by = models.CharField(max_length=200, blank=True)
    # Answered from the response cache: no upstream was called (cost 0).
    cached = models.BooleanField(default=False)
    # The deployment that answered (or the last one tried), and how many upstream attempts it took.
    deployment = models.ForeignKey(
        "catalogue.Deployment", null=True, blank=True, on_delete=models.SET_NULL, related_name="usage"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
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
            models.Index(fields=["deployment", "created_at"]),
            models.Index(fields=["group", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.model_public_id} {self.prompt_tokens}+{self.completion_tokens} tokens ({self.status})"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Limit(models.Model):
    """Requests and tokens per minute and a spending budget, for one scope.

    Scope "default" (no user, no key) applies to every user on their own. A user's row
    overrides it field by field; an empty field inherits the default. A key's row adds limits
    of that key alone (keys inherit nothing: the user's limits already cover every key).
    A group's row is shared by every request billed to the group (a group key's, or a member's
    whose default group it is), on top of the user's and the key's. 0 means "no limit", so an
    override can lift a default.
    """

    class Scope(models.TextChoices):
        DEFAULT = "default", "Default for every user"
        USER = "user", "User"
        KEY = "key", "API key"
        GROUP = "group", "Group"

    class Period(models.TextChoices):
        DAY = "day", "Day (UTC)"
        MONTH = "month", "Month (UTC)"

    scope = models.CharField(max_length=8, choices=Scope.choices, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="limit"
    )
    api_key = models.OneToOneField(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.CASCADE, related_name="limit"
    )
    group = models.OneToOneField("auth.Group", null=True, blank=True, on_delete=models.CASCADE, related_name="limit")
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: inherit the default. 0: no limit."
    )
    tokens_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Prompt plus completion tokens. Empty: inherit the default. 0: no limit."
    )
    budget_usd = models.DecimalField(
        "budget (USD)",
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Spending cap per period. Empty: inherit the default. 0: no limit.",
    )
    budget_period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTH)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "limit"
        ordering = ["scope", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=True) | Q(api_key__isnull=True), name="limit_user_or_key_not_both"
            ),
            models.CheckConstraint(
                condition=Q(group__isnull=True) | Q(user__isnull=True, api_key__isnull=True),
                name="limit_group_alone",
            ),
            models.UniqueConstraint(fields=["scope"], condition=Q(scope="default"), name="limit_one_default"),
        ]

    def __str__(self) -> str:
        if self.group_id is not None:
            return f"limits of group {self.group}"
        if self.api_key_id is not None:
            return f"limits of key {self.api_key}"
        if self.user_id is not None:
            return f"limits of user {self.user}"
        return "default limits"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.group_id is not None:
            self.scope = self.Scope.GROUP
        elif self.api_key_id is not None:
            self.scope = self.Scope.KEY
        elif self.user_id is not None:
            self.scope = self.Scope.USER
        else:
            self.scope = self.Scope.DEFAULT
        self.updated_at = timezone.now()
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def clean(self) -> None:
        if sum(owner is not None for owner in (self.user_id, self.api_key_id, self.group_id)) > 1:
            raise ValidationError("A limit applies to one user, key or group.")


class DailyUsage(models.Model):
    """The ledger folded per UTC day, model, user, group, key, deployment and source (usage.rollup).

    Analytics read these rows, never the ledger: a page costs days x dimensions, whatever the ledger's
    size. Keys, groups and deployments are kept as bare ids (no constraint): their rows outlive them,
    as the ledger's totals do. `latency_buckets[i]` counts requests whose latency fell in bucket i of
    usage.rollup.LATENCY_BOUNDS_MS (the last one: slower than every bound).
    """

    day = models.DateField()
    model_public_id = models.CharField(max_length=200)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(
        "auth.Group", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    deployment = models.ForeignKey(
        "catalogue.Deployment", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    source = models.CharField(max_length=8, choices=UsageRecord.Source.choices)
    requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=20, decimal_places=8, default=Decimal("0"))
    latency_ms_sum = models.BigIntegerField(default=0)
    latency_count = models.BigIntegerField(default=0)
    latency_buckets = ArrayField(models.BigIntegerField(), default=list)

    class Meta:
        verbose_name_plural = "daily usage"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "model_public_id", "user", "group", "api_key", "deployment", "source"],
                name="daily_usage_one_row_per_dimensions",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["group", "day"]), models.Index(fields=["day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.model_public_id}: {self.requests} requests"


class RollupState(models.Model):
    """How far the rollup has folded the ledger: every row with an id up to `last_id` is in DailyUsage."""

    name = models.CharField(max_length=32, unique=True)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"rollup {self.name} up to ledger id {self.last_id}"
