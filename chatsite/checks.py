from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def generated_secret_key(app_configs: Any, **kwargs: Any) -> list[Warning]:
    if getattr(settings, "SECRET_KEY_GENERATED", False):
        return [
            Warning(
                "SECRET_KEY is unset: a key generated under var/ is used.",
                hint="Set SECRET_KEY in production; every machine of a deployment must share it.",
                id="chatsite.W001",
            )
        ]
    return []
