"""Which environment variables a provider may take its API key from.

A provider's key is sent as the Bearer token to the provider's base URL. Naming any variable would
let whoever edits providers read the server's own secrets (SECRET_KEY, DATABASE_URL, ADMIN_PASSWORD)
through a listener of theirs, so only names matching PROVIDER_KEY_ENV_ALLOWED (default `*_API_KEY`)
are honoured, and never a variable the settings themselves read. The rule is applied when a name is
entered (admin, `providers add`) and again each time a key is read, so a name stored earlier or
written by other means is refused too.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from django.conf import settings

from core import env

# Read by the launcher or by libraries rather than through core.env, so listed by hand.
_ALWAYS_REFUSED = frozenset(
    {
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "ADMIN_PASSWORD",
        "EMAIL_HOST_PASSWORD",
        "EMAIL_URL",
        "DJANGO_SETTINGS_MODULE",
        "PGPASSWORD",
    }
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


def problem(name: str) -> str | None:
    """Why `name` may not hold a provider key, or None when it may."""
    if not _NAME.match(name):
        return "Enter the name of an environment variable (letters, digits and '_')."
    if name in _ALWAYS_REFUSED or name in env.READ:
        return f"{name} is part of the server's own configuration and cannot be used as a provider key."
    patterns = list(settings.PROVIDER_KEY_ENV_ALLOWED)
    if not any(fnmatchcase(name, pattern) for pattern in patterns):
        names = " or ".join(patterns)
        return f"{name} is not allowed: provider keys come from variables named {names} (PROVIDER_KEY_ENV_ALLOWED)."
    return None


def allowed(name: str) -> bool:
    return problem(name) is None
