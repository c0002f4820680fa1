from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import ApiKey, User

admin.site.register(User, UserAdmin)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    list_display = ("display", "name", "user", "created_at", "last_used_at", "expires_at", "revoked_at")
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("prefix", "last4", "created_at", "last_used_at")
    exclude = ("key_hash",)
