"""Limit configuration: a default for every user, overrides per user and per API key.

Imported from gateway.models so Django registers it with the gateway app. The counters
themselves live in Redis (or in-process); see gateway.limits.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Limit(models.Model):
    """Requests and tokens per minute and a spending budget, for one scope.

    Scope "default" (no user, no key) applies to every user on their own. A user's row
    overrides it field by field; an empty field inherits the default. A key's row adds limits
    of that key alone (keys inherit nothing: the user's limits already cover every key).
    0 means "no limit", so an override can lift a default.
    """

    class Scope(models.TextChoices):
        DEFAULT = "default", "Default for every user"
        USER = "user", "User"
        KEY = "key", "API key"

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
            models.UniqueConstraint(fields=["scope"], condition=Q(scope="default"), name="limit_one_default"),
        ]

    def __str__(self) -> str:
        if self.api_key_id is not None:
            return f"limits of key {self.api_key}"
        if self.user_id is not None:
            return f"limits of user {self.user}"
        return "default limits"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.api_key_id is not None:
            self.scope = self.Scope.KEY
        elif self.user_id is not None:
            self.scope = self.Scope.USER
        else:
            self.scope = self.Scope.DEFAULT
        self.updated_at = timezone.now()
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def clean(self) -> None:
        if self.user_id is not None and self.api_key_id is not None:
            raise ValidationError("A limit applies to a user or to a key, not both.")


def _limits_changed(**kwargs: object) -> None:
    from gateway.limits import config_changed

    config_changed()


models.signals.post_save.connect(_limits_changed, sender=Limit, dispatch_uid="limits-changed-save")
models.signals.post_delete.connect(_limits_changed, sender=Limit, dispatch_uid="limits-changed-delete")
