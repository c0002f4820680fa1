"""Helpers for the profile tests: catalogue rows and ledger rows made directly, as the gateway would."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from accounts.models import ApiKey, User
from catalogue.models import LanguageModel, Provider
from usage.models import UsageRecord

SECRET_RE = re.compile(r'data-testid="new-key">(sk-[A-Za-z0-9_-]{43})<')


def make_model(public_id: str, *, base_url: str = "http://127.0.0.1:9/v1", **fields: object) -> LanguageModel:
    provider, _ = Provider.objects.get_or_create(name="fake", defaults={"base_url": base_url})
    defaults: dict[str, object] = {"upstream_model": public_id, "provider": provider}
    defaults.update(fields)
    model, _ = LanguageModel.objects.update_or_create(public_id=public_id, defaults=defaults)
    return model


def record(
    user: User,
    model: str,
    *,
    prompt: int,
    completion: int,
    source: str = UsageRecord.Source.API,
    key: ApiKey | None = None,
    cost: str = "0",
    at: datetime | None = None,
) -> UsageRecord:
    return UsageRecord.objects.create(
        user=user,
        api_key=key,
        model=LanguageModel.objects.filter(public_id=model).first(),
        model_public_id=model,
        source=source,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=Decimal(cost),
        created_at=at or timezone.now(),
    )
