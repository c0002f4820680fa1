from django.contrib import admin

from gateway.models import LanguageModel, Provider, UsageRecord


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin[Provider]):
    list_display = ("name", "base_url", "enabled", "has_api_key")


@admin.register(LanguageModel)
class LanguageModelAdmin(admin.ModelAdmin[LanguageModel]):
    list_display = ("public_id", "provider", "upstream_model", "context_length", "max_output_tokens", "enabled")
    list_filter = ("enabled", "provider")


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin[UsageRecord]):
    list_display = ("created_at", "user", "model_public_id", "source", "prompt_tokens", "completion_tokens", "status")
    list_filter = ("source", "status")
