"""Admin for people and their keys, and the audit log of what admins did.

The audit log is Django's own LogEntry: the admin writes one for every add, change, delete and password
change; our custom actions write theirs through `ModelAdmin.log_change`. It is shown read-only here.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db.models import Count, DecimalField, F, IntegerField, Max, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from accounts import keys
from accounts.groups import people
from accounts.models import ApiKey, GroupProfile, Invite, User


def _includes_self(request: HttpRequest, queryset: QuerySet[User]) -> bool:
    return any(user.pk == request.user.pk for user in queryset)


def _is_superuser(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_active", False) and getattr(request.user, "is_superuser", False))


# Fields that grant powers: only a superuser may change them, on anyone (themselves included).
POWER_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


@admin.register(User)
class ChatUserAdmin(UserAdmin):
    """People. Staff given the user permissions manage ordinary accounts; granting or removing staff or
    superuser rights, and changing any staff account (its password included), takes a superuser."""

    list_display = (
        "username",
        "email",
        "is_active",
        "is_staff",
        "last_activity",
        "requests",
        "tokens",
        "cost",
    )
    list_filter = ("is_active", "is_staff", "is_superuser", "groups")
    fieldsets = (*(UserAdmin.fieldsets or ()), ("Billing", {"fields": ("default_group",)}))
    actions = ["activate", "deactivate", "make_admin", "remove_admin"]

    def has_superuser_permission(self, request: HttpRequest) -> bool:
        return _is_superuser(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_staff and not _is_superuser(request):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_staff and not _is_superuser(request):
            return False
        return super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if _is_superuser(request) else (*fields, *POWER_FIELDS)

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _requests=Count("usage"),
                _tokens=Coalesce(
                    Sum(F("usage__prompt_tokens") + F("usage__completion_tokens")),
                    Value(0),
                    output_field=IntegerField(),
                ),
                _cost=Coalesce(
                    Sum("usage__cost"), Value(0), output_field=DecimalField(max_digits=20, decimal_places=8)
                ),
                # PostgreSQL's GREATEST skips NULLs: whichever of the two is known, or the later one.
                _last_activity=Greatest("last_login", Max("usage__created_at")),
            )
        )

    @admin.display(description="last activity", ordering="_last_activity")
    def last_activity(self, user: Any) -> Any:
        return user._last_activity

    @admin.display(description="requests", ordering="_requests")
    def requests(self, user: Any) -> int:
        return int(user._requests)

    @admin.display(description="tokens", ordering="_tokens")
    def tokens(self, user: Any) -> int:
        return int(user._tokens)

    @admin.display(description="cost (USD)", ordering="_cost")
    def cost(self, user: Any) -> str:
        return f"{user._cost:.4f}"

    def _set(self, request: HttpRequest, queryset: QuerySet[User], message: str, **fields: bool) -> int:
        changed = 0
        for user in queryset:
            if all(getattr(user, name) == value for name, value in fields.items()):
                continue
            for name, value in fields.items():
                setattr(user, name, value)
            user.save(update_fields=list(fields))
            self.log_change(request, user, message)
            changed += 1
        return changed

    def _ordinary(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        """The users this admin may act on: anyone for a superuser, non-staff accounts for other staff."""
        return queryset if _is_superuser(request) else queryset.filter(is_staff=False, is_superuser=False)

    @admin.action(description="Activate selected users", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        n = self._set(request, self._ordinary(request, queryset), "Activated.", is_active=True)
        self.message_user(request, f"{n} user(s) activated.", messages.SUCCESS)

    @admin.action(description="Deactivate selected users (their API keys stop working at once)", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        if _includes_self(request, queryset):
            self.message_user(request, "You cannot deactivate yourself; nothing was changed.", messages.ERROR)
            return
        n = self._set(request, self._ordinary(request, queryset), "Deactivated.", is_active=False)
        self.message_user(
            request, f"{n} user(s) deactivated; their keys and sessions no longer work.", messages.SUCCESS
        )

    @admin.action(description="Make selected users admins", permissions=["superuser"])
    def make_admin(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        n = self._set(request, queryset, "Made admin.", is_staff=True, is_superuser=True)
        self.message_user(request, f"{n} user(s) are now admins.", messages.SUCCESS)

    @admin.action(description="Remove admin rights from selected users", permissions=["superuser"])
    def remove_admin(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        if _includes_self(request, queryset):
            self.message_user(request, "You cannot remove your own admin rights; nothing was changed.", messages.ERROR)
            return
        n = self._set(request, queryset, "Removed admin rights.", is_staff=False, is_superuser=False)
        self.message_user(request, f"{n} user(s) are no longer admins.", messages.SUCCESS)


class KeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "active"), ("revoked", "revoked"), ("expired", "expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        from django.utils import timezone

        now = timezone.now()
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    """Keys are issued by their owners (profile) or `apikey create`; the admin sees and revokes, never the secret."""

    list_display = (
        "display",
        "name",
        "user",
        "group",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "status",
    )
    list_filter = (KeyStatusFilter, "created_at")
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__username")
    _times = ("created_at", "last_used_at", "expires_at", "revoked_at")
    fields = ("user", "group", "name", "display", "allowed_models", "cache_ttl_seconds", *_times)
    readonly_fields = ("user", "group", "display", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke_keys"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="status")
    def status(self, key: ApiKey) -> str:
        from accounts.services import key_status

        return key_status(key)

    @admin.action(description="Revoke selected keys (they stop working at once)", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        n = 0
        for key in queryset:
            if keys.revoke(key):
                self.log_change(request, key, "Revoked.")
                n += 1
        self.message_user(request, f"{n} key(s) revoked.", messages.SUCCESS)


@admin.register(LogEntry)
class AuditLogAdmin(admin.ModelAdmin[LogEntry]):
    """Who changed what, when: read-only, for admins."""

    list_display = ("action_time", "user", "action", "content_type", "object_link", "change")
    list_filter = ("action_flag", "content_type", "user")
    search_fields = ("object_repr", "change_message", "user__username")
    date_hierarchy = "action_time"
    list_select_related = ("user", "content_type")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(getattr(request.user, "is_superuser", False))

    @admin.display(description="action", ordering="action_flag")
    def action(self, entry: LogEntry) -> str:
        return {1: "added", 2: "changed", 3: "deleted"}.get(entry.action_flag, str(entry.action_flag))

    @admin.display(description="object", ordering="object_repr")
    def object_link(self, entry: LogEntry) -> str:
        if entry.action_flag != 3 and entry.content_type and entry.object_id:
            try:
                url = reverse(
                    f"admin:{entry.content_type.app_label}_{entry.content_type.model}_change", args=[entry.object_id]
                )
            except NoReverseMatch:
                return entry.object_repr
            return format_html('<a href="{}">{}</a>', url, entry.object_repr)
        return entry.object_repr

    @admin.display(description="change")
    def change(self, entry: LogEntry) -> str:
        return entry.get_change_message()


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin[Invite]):
    """Invite links (SIGNUP=invite): who invited whom. Links are made on /accounts/invites/; deleting an
    unused one withdraws it. The token itself is never stored, so never shown."""

    list_display = ("created_by", "created_at", "expires_at", "used_by", "used_at")
    list_select_related = ("created_by", "used_by")
    search_fields = ("created_by__username", "used_by__username")
    fields = ("created_by", "created_at", "expires_at", "used_by", "used_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class GroupForm(forms.ModelForm[Group]):
    """A group with its members, which Django's own form leaves to each user's page."""

    members = forms.ModelMultipleChoiceField(
        queryset=people().order_by("username"),
        required=False,
        widget=FilteredSelectMultiple("members", is_stacked=False),
    )

    class Meta:
        model = Group
        fields = ("name", "permissions")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # A list, not a lazy queryset: the audit entry compares against it after the members changed.
            self.fields["members"].initial = list(self.instance.user_set.all())


class GroupProfileInline(admin.StackedInline[GroupProfile, Group]):
    model = GroupProfile
    can_delete = False
    fields = ("managers",)
    filter_horizontal = ("managers",)
    verbose_name_plural = "managers (manage members and keys from the group's page, without being staff)"


admin.site.unregister(Group)


@admin.register(Group)
class ChatGroupAdmin(GroupAdmin):
    """Groups: who may use restricted models (set on each model), shared limits (Limits), managers and members."""

    form = GroupForm
    inlines = [GroupProfileInline]
    list_display = ("name", "member_count")

    # Members and permissions are powers: as on users' pages, only a superuser grants them.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return _is_superuser(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_superuser(request)

    @admin.display(description="members")
    def member_count(self, group: Group) -> int:
        return group.user_set.count()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        form.instance.user_set.set(form.cleaned_data["members"])
