"""Admin for the catalogue: providers (write-only keys, connection check, model import) and models.

Every change made here lands in Django's admin log (see accounts.admin.AuditLogAdmin); the custom actions
write their entries through `log_change` / `log_addition`.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from catalogue import health_report, keysource, services
from catalogue.models import Deployment, Fallback, LanguageModel, Provider


class ProviderForm(forms.ModelForm[Provider]):
    """The provider key is write-only: typed in to set it, never rendered back."""

    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted. Leave empty to keep the current key. Ignored when an environment variable "
        "is named below. The key belongs to the base URL: changing the URL removes the stored key, so enter it "
        "again with the new URL.",
    )
    clear_api_key = forms.BooleanField(label="Remove the stored key", required=False)
    # Said explicitly: Django 6 changes the scheme assumed for an address typed without one.
    base_url = forms.URLField(
        max_length=500, assume_scheme="https", help_text=Provider._meta.get_field("base_url").help_text
    )

    class Meta:
        model = Provider
        fields = (
            "name",
            "kind",
            "base_url",
            "responses_api",
            "output_cap_param",
            "api_key",
            "clear_api_key",
            "api_key_env",
            "connect_timeout",
            "read_timeout",
            "enabled",
        )

    def clean_api_key_env(self) -> str:
        name: str = self.cleaned_data.get("api_key_env", "").strip()
        if name:
            reason = keysource.problem(name)
            if reason:
                raise forms.ValidationError(reason)
        return name

    def save(self, commit: bool = True) -> Provider:
        provider = super().save(commit=False)
        if self.cleaned_data.get("clear_api_key"):
            provider.set_api_key("")
        elif self.cleaned_data.get("api_key"):
            provider.set_api_key(self.cleaned_data["api_key"])
        if commit:
            provider.save()
        return provider


def _superuser(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_active", False) and getattr(request.user, "is_superuser", False))


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin[Provider]):
    """Providers hold the keys to paid upstream accounts and decide where requests go: superusers only.

    Staff granted the provider permissions may look (view permission), never change, add, delete,
    check a connection or import models, each of which sends the provider's key to its base URL.
    """

    form = ProviderForm
    list_display = ("name", "kind", "base_url", "enabled", "key_source", "model_count")
    list_filter = ("enabled", "kind")
    search_fields = ("name", "base_url")
    fields = (
        "name",
        "kind",
        "base_url",
        "responses_api",
        "output_cap_param",
        "key_source",
        "api_key",
        "clear_api_key",
        "api_key_env",
        "connect_timeout",
        "read_timeout",
        "enabled",
    )
    readonly_fields = ("key_source",)
    actions = ["check_connection", "import_models"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _superuser(request) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Provider | None = None) -> bool:
        return _superuser(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Provider | None = None) -> bool:
        return _superuser(request) and super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Provider, form: forms.Form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.key_dropped:
            self.message_user(
                request,
                f"The base URL of {obj.name} changed, so its stored API key was removed: enter the key again.",
                messages.WARNING,
            )

    @admin.display(description="API key")
    def key_source(self, provider: Provider) -> str:
        # Says where the key comes from, never what it is.
        if provider.api_key_env:
            if not keysource.allowed(provider.api_key_env):
                return f"none (environment variable {provider.api_key_env} is not allowed)"
            return f"from environment variable {provider.api_key_env}"
        return "stored (encrypted)" if provider.api_key_encrypted else "none"

    @admin.display(description="models")
    def model_count(self, provider: Provider) -> int:
        return provider.models.count()

    @admin.action(description="Check connection and list upstream models", permissions=["change"])
    def check_connection(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            result = services.check_provider(provider)
            if result.ok:
                ids = ", ".join(m.id for m in result.models) or "none"
                self.message_user(
                    request,
                    f"Provider {provider.name}: connected; {len(result.models)} upstream model(s): {ids}",
                    messages.SUCCESS,
                )
            else:
                self.message_user(request, f"Provider {provider.name}: {result.error}", messages.ERROR)

    @admin.action(description="Import upstream models into the catalogue", permissions=["change"])
    def import_models(self, request: HttpRequest, queryset: QuerySet[Provider]) -> HttpResponse | None:
        """First an intermediate page to tick the upstream models; its POST imports the ticked ones."""
        providers = list(queryset)
        if request.POST.get("post") == "yes":
            chosen = set(request.POST.getlist("models"))
            for provider in providers:
                wanted = [m.removeprefix(f"{provider.pk}:") for m in chosen if m.startswith(f"{provider.pk}:")]
                if not wanted:
                    continue
                result = services.import_models(provider, wanted)
                model_admin = self.admin_site.get_model_admin(LanguageModel)
                for model in result.created:
                    model_admin.log_addition(request, model, f"Imported from provider {provider.name}.")
                if result.created:
                    names = ", ".join(m.public_id for m in result.created)
                    self.message_user(request, f"Provider {provider.name}: imported {names}.", messages.SUCCESS)
                if result.skipped:
                    self.message_user(
                        request,
                        f"Provider {provider.name}: skipped {', '.join(result.skipped)} (already in the catalogue or "
                        "no longer offered).",
                        messages.WARNING,
                    )
                if result.error:
                    self.message_user(request, f"Provider {provider.name}: {result.error}", messages.ERROR)
            if not chosen:
                self.message_user(request, "No model was ticked; nothing imported.", messages.WARNING)
            return None
        listings = []
        for provider in providers:
            check = services.check_provider(provider)
            known = set(provider.models.values_list("upstream_model", flat=True))
            listings.append({"provider": provider, "result": check, "known": known})
        context = {
            **self.admin_site.each_context(request),
            "title": "Import upstream models",
            "opts": self.model._meta,
            "listings": listings,
            "queryset": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/catalogue/provider/import_models.html", context)


class DeploymentInline(admin.TabularInline[Deployment, LanguageModel]):
    model = Deployment
    extra = 0
    fields = ("provider", "upstream_model", "priority", "weight", "max_concurrent", "enabled", "health")
    readonly_fields = ("health",)
    verbose_name = "deployment"
    verbose_name_plural = "Deployments (the upstreams serving this model; the first row is the model's own provider)"

    @admin.display(description="health (last hour)")
    def health(self, deployment: Deployment) -> str:
        if deployment.pk is None:
            return "-"
        (found,) = health_report.report([deployment])
        return "; ".join(part for part in (found.state, found.last_hour, found.measured) if part)


class FallbackInline(admin.TabularInline[Fallback, LanguageModel]):
    model = Fallback
    fk_name = "model"
    extra = 0
    fields = ("reason", "to", "position")
    autocomplete_fields = ("to",)
    verbose_name = "fallback"
    verbose_name_plural = (
        "Fallbacks (other models tried in order when every deployment fails, or when a request does not fit "
        "the context; a caller must be allowed the fallback too)"
    )


@admin.register(LanguageModel)
class LanguageModelAdmin(admin.ModelAdmin[LanguageModel]):
    list_display = (
        "public_id",
        "provider",
        "upstream_model",
        "context_length",
        "max_output_tokens",
        "input_price_per_million",
        "output_price_per_million",
        "enabled",
    )
    list_editable = ("enabled",)
    list_filter = ("enabled", "kind", "provider", "category", "groups")
    search_fields = ("public_id", "upstream_model", "description", "owned_by")
    list_select_related = ("provider",)
    fieldsets = (
        (None, {"fields": ("public_id", "provider", "upstream_model", "enabled", "kind")}),
        ("Capabilities", {"fields": ("vision", "tools", "reasoning", "json_output")}),
        ("Limits", {"fields": ("context_length", "max_output_tokens")}),
        ("Routing", {"fields": ("routing",)}),
        ("Response cache", {"fields": ("cache_ttl_seconds", "cache_shared", "cache_unsafe", "cache_hits_limited")}),
        ("Prices (USD per million tokens)", {"fields": ("input_price_per_million", "output_price_per_million")}),
        (
            "Description",
            {
                "fields": (
                    "display_name",
                    "owned_by",
                    "creator",
                    "creator_logo_url",
                    "category",
                    "censorship",
                    "description",
                )
            },
        ),
        ("Links", {"fields": ("license_name", "license_url", "docs_url", "prompt_guide_url")}),
        ("Who may use it", {"fields": ("groups",)}),
    )
    filter_horizontal = ("groups",)
    actions = ["enable", "disable"]
    inlines = [DeploymentInline, FallbackInline]

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[LanguageModel], enabled: bool) -> int:
        n = 0
        for model in queryset.exclude(enabled=enabled):
            model.enabled = enabled
            model.save(update_fields=["enabled"])
            self.log_change(request, model, "Enabled." if enabled else "Disabled.")
            n += 1
        return n

    @admin.action(description="Enable selected models", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[LanguageModel]) -> None:
        self.message_user(request, f"{self._set_enabled(request, queryset, True)} model(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable selected models", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[LanguageModel]) -> None:
        n = self._set_enabled(request, queryset, False)
        self.message_user(request, f"{n} model(s) disabled.", messages.SUCCESS)
