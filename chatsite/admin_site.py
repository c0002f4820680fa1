"""The admin's index in the order an operator looks: people, models, keys and usage first; security last.

Django lists apps alphabetically under their own names, which put allauth's "Accounts" beside ours
and django-axes's three tables in the middle. Here the index (and the sidebar) lists sections of
our own instead; a model no section names keeps its app's section, between the two. Each app's own
index page (/admin/APP/) stays as Django builds it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest

# (title, models as "app_label.ObjectName"; "*.Group" is whichever app's group model the admin lists)
LEADING: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Users and groups", ("accounts.User", "*.Group", "accounts.Invite")),
    ("Models and providers", ("catalogue.LanguageModel", "catalogue.Provider")),
    ("API keys", ("accounts.ApiKey",)),
    ("Usage and limits", ("usage.UsageRecord", "usage.Limit")),
)
TRAILING: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Sign-in: email addresses, single sign-on, two-factor",
        (
            "account.EmailAddress",
            "socialaccount.SocialApp",
            "socialaccount.SocialAccount",
            "socialaccount.SocialToken",
            "mfa.Authenticator",
        ),
    ),
    (
        "Security: audit log and failed logins",
        ("admin.LogEntry", "axes.AccessAttempt", "axes.AccessFailureLog", "axes.AccessLog"),
    ),
)


def _matches(pattern: str, key: str) -> bool:
    app, _, name = pattern.partition(".")
    key_app, _, key_name = key.partition(".")
    return name == key_name and app in ("*", key_app)


class Site(admin.AdminSite):
    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        models = {f"{app['app_label']}.{m['object_name']}": (app, m) for app in apps for m in app["models"]}
        placed: set[str] = set()

        def section(title: str, patterns: tuple[str, ...]) -> dict[str, Any] | None:
            keys = [key for pattern in patterns for key in models if _matches(pattern, key) and key not in placed]
            if not keys:
                return None
            placed.update(keys)
            first = models[keys[0]][0]
            return {**first, "name": title, "models": [models[key][1] for key in keys]}

        leading = [section(title, patterns) for title, patterns in LEADING]
        trailing = [section(title, patterns) for title, patterns in TRAILING]
        middle = []
        for app in apps:
            rest = [m for m in app["models"] if f"{app['app_label']}.{m['object_name']}" not in placed]
            if rest:
                middle.append({**app, "models": rest})
        return [s for s in [*leading, *middle, *trailing] if s is not None]


class SiteAdminConfig(AdminConfig):
    default_site = "chatsite.admin_site.Site"
