from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts import services
from accounts.forms import ApiKeyCreateForm, SignupForm
from accounts.models import ApiKey, User
from catalogue.models import LanguageModel
from usage import queries

# The model id put into the snippet templates the page's script fills in when another model is chosen.
_MODEL_SLOT = "__MODEL__"


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("chat")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("chat")
    return render(request, "accounts/signup.html", {"form": form}, status=400 if form.errors else 200)


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    """The profile: create and list API keys, client snippets, usage.

    A new key's secret exists only in the response to the POST that created it: it is rendered into
    that page and kept nowhere else (no session, no message, no redirect).
    """
    user = _user(request)
    new_key: ApiKey | None = None
    secret: str | None = None
    if request.method == "POST":
        form = ApiKeyCreateForm(request.POST)
        if form.is_valid():
            new_key, secret = services.issue_key(
                user, form.cleaned_data["name"], expires_at=form.expires_at, allowed_models=form.model_ids
            )
            form = ApiKeyCreateForm()
    else:
        form = ApiKeyCreateForm()
    context = _profile_context(request, user, form, new_key, secret)
    return render(request, "accounts/profile.html", context, status=400 if form.errors else 200)


def _profile_context(
    request: HttpRequest, user: User, form: ApiKeyCreateForm, new_key: ApiKey | None, secret: str | None
) -> dict[str, Any]:
    models = list(LanguageModel.objects.usable().chat().values_list("public_id", flat=True))
    wanted = request.GET.get("model", "")
    if new_key is not None and new_key.allowed_models:
        models_for_key = [m for m in models if m in new_key.allowed_models]
        chosen = models_for_key[0] if models_for_key else new_key.allowed_models[0]
    else:
        chosen = wanted if wanted in models else (models[0] if models else "model-id")
    base_url = request.build_absolute_uri("/v1").rstrip("/")
    snippets = services.snippets(base_url, chosen, secret)
    now = timezone.now()
    keys = list(queries.keys_with_usage(user))
    for key in keys:
        key.status = services.key_status(key, now)  # type: ignore[attr-defined]
    _, since = queries.chart_window()
    return {
        "form": form,
        "new_key": new_key,
        "secret": secret,
        "keys": keys,
        "models": models,
        "chosen_model": chosen,
        "base_url": base_url,
        "snippets": [(name, services.SNIPPET_LABELS[name], code) for name, code in snippets.items()],
        "snippet_templates": services.snippets(base_url, _MODEL_SLOT, secret),
        "model_slot": _MODEL_SLOT,
        "usage_periods": [
            ("recent", f"Last {queries.CHART_DAYS} days", queries.usage_summary(user, since=since)),
            ("all", "All time", queries.usage_summary(user)),
        ],
        "chart_days": queries.CHART_DAYS,
    }


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def revoke_key(request: HttpRequest, key_id: int) -> HttpResponse:
    """GET asks for confirmation; POST revokes. Someone else's key answers 404 either way."""
    user = _user(request)
    if request.method == "POST":
        key, revoked = services.revoke_own_key(user, key_id)
        if revoked:
            messages.success(request, f"Key “{key.name}” ({key.display}) is revoked; it no longer works.")
        else:
            messages.info(request, f"Key “{key.name}” ({key.display}) was already revoked.")
        return redirect("profile")
    key = services.own_key(user, key_id)
    return render(request, "accounts/revoke_key.html", {"key": key})
