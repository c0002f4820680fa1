from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from django.utils import timezone


class User(AbstractUser):
    """The project's user; custom from the first migration so fields can be added later."""

    # The group that pays for the user's requests made without a group's key (while a member of it).
    default_group = models.ForeignKey(
        Group,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The group whose limits and budget the user's requests count against (while a member of it).",
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class ApiKey(models.Model):
    """A key for the /v1 API. Only a keyed hash of the secret is stored; see accounts.keys."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    # The first characters after "sk-", stored in clear to find the row and to show the key in lists.
    prefix = models.CharField(max_length=16, db_index=True)
    last4 = models.CharField(max_length=4)
    key_hash = models.CharField(max_length=64, unique=True)
    # A group's key (for a team's scripts): its user is the group's service account, the group pays.
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys")
    # Model ids this key may call; empty means every enabled model.
    allowed_models = models.JSONField(default=list, blank=True)
    # The response cache for this key's requests (gateway.cache), set by an admin.
    cache_ttl_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Response cache for this key: empty follows each model's setting, 0 never caches, "
        "a number caches its answers for that many seconds.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.display} ({self.name or 'unnamed'})"

    @property
    def display(self) -> str:
        return f"sk-{self.prefix}…{self.last4}"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class Invite(models.Model):
    """A link that lets one person sign up while SIGNUP=invite. Only a hash of its token is stored."""

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invites_sent")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_by = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="invited_by"
    )
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invite by {self.created_by} ({self.created_at:%Y-%m-%d})"

    @property
    def usable(self) -> bool:
        return self.used_at is None and self.expires_at > timezone.now()


class GroupProfile(models.Model):
    """What a group (Django's auth Group, the one concept of a group) adds: its managers, its service account.

    Managers add and remove the group's members and issue and revoke its keys, from the group's page,
    without being staff. The service account is the user a group's keys call as (made with the first key):
    requests of a team's scripts are the team's, not those of whoever created the key.
    """

    group = models.OneToOneField(Group, on_delete=models.CASCADE, primary_key=True, related_name="profile")
    managers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="managed_groups")
    service_user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, editable=False, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "group settings"
        verbose_name_plural = "group settings"

    def __str__(self) -> str:
        return f"settings of {self.group.name}"


class SsoMembership(models.Model):
    """A membership single sign-on granted (the provider's groups claim); it ends when the claim stops naming it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "group"], name="sso_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.group} (single sign-on)"
