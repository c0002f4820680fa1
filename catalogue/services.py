"""Catalogue upkeep: ask a provider which models it serves and import chosen ones (the admin); register a
pool of local servers of one model (the launcher's local model).

The asking is the gateway's (gateway.upstream is the only module that imports httpx): it registers its
lister here, with `register_model_lister`, in its AppConfig.ready().
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Q

from catalogue.models import Deployment, LanguageModel, Provider


class ListingFailed(Exception):
    """The provider could not be asked for its models; the message says why, fit for the admin."""


# The provider's GET /models `data` items; raises ListingFailed.
ModelLister = Callable[[Provider], list[Any]]
_listers: dict[str, ModelLister] = {}


def register_model_lister(lister: ModelLister) -> None:
    _listers["models"] = lister


@dataclass(frozen=True)
class UpstreamModel:
    id: str
    owned_by: str = ""
    context_length: int | None = None
    max_output_tokens: int | None = None

    @classmethod
    def from_wire(cls, item: dict[str, Any]) -> UpstreamModel:
        # Catalogue fields beyond OpenAI's Model object, as vLLM, OpenRouter and llama.cpp name them.
        context = item.get("context_length") or item.get("max_model_len") or item.get("context_window")
        top = item.get("top_provider")
        limit = item.get("max_output_tokens") or (top.get("max_completion_tokens") if isinstance(top, dict) else None)
        return cls(
            id=str(item["id"]),
            owned_by=str(item.get("owned_by") or ""),
            context_length=int(context) if isinstance(context, int | float) and context > 0 else None,
            max_output_tokens=int(limit) if isinstance(limit, int | float) and limit > 0 else None,
        )


@dataclass
class CheckResult:
    ok: bool
    models: list[UpstreamModel] = field(default_factory=list)
    error: str = ""


@dataclass
class ImportResult:
    created: list[LanguageModel] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    error: str = ""


def check_provider(provider: Provider) -> CheckResult:
    """Connect to the provider and list its models; a failure is described, never raised."""
    if "models" not in _listers:
        raise ImproperlyConfigured("No app registered a model lister: is gateway installed?")
    try:
        items = _listers["models"](provider)
    except ListingFailed as exc:
        return CheckResult(ok=False, error=str(exc))
    models = []
    for item in items:
        if isinstance(item, dict) and item.get("id"):
            models.append(UpstreamModel.from_wire(item))
    return CheckResult(ok=True, models=sorted(models, key=lambda m: m.id))


def _public_id(provider: Provider, upstream_id: str) -> str:
    """The upstream's own id, unless another provider's model already has it: then "provider/id"."""
    if not LanguageModel.objects.filter(public_id=upstream_id).exists():
        return upstream_id
    return f"{provider.name}/{upstream_id}"


def import_models(provider: Provider, upstream_ids: list[str]) -> ImportResult:
    """Add the chosen upstream models to the catalogue, enabled; ones already there are skipped."""
    check = check_provider(provider)
    if not check.ok:
        return ImportResult(error=check.error)
    offered = {m.id: m for m in check.models}
    result = ImportResult()
    with transaction.atomic():
        for upstream_id in dict.fromkeys(upstream_ids):
            found = offered.get(upstream_id)
            if found is None or provider.models.filter(upstream_model=upstream_id).exists():
                result.skipped.append(upstream_id)
                continue
            public_id = _public_id(provider, upstream_id)
            if LanguageModel.objects.filter(public_id=public_id).exists():
                result.skipped.append(upstream_id)
                continue
            fields: dict[str, Any] = {"owned_by": found.owned_by or provider.name}
            if found.context_length:
                fields["context_length"] = found.context_length
            if found.max_output_tokens:
                fields["max_output_tokens"] = found.max_output_tokens
            elif found.context_length:
                default = LanguageModel._meta.get_field("max_output_tokens").get_default()
                fields["max_output_tokens"] = min(int(default), found.context_length)
            result.created.append(
                LanguageModel.objects.create(
                    public_id=public_id, provider=provider, upstream_model=upstream_id, enabled=True, **fields
                )
            )
    return result


def _pool_member(pool: str, index: int) -> str:
    return pool if index == 0 else f"{pool}-{index + 1}"


def _pool(pool: str) -> Q:
    """The providers of a pool: `pool`, `pool-2`, `pool-3`, ..."""
    return Q(name=pool) | Q(name__regex=rf"^{re.escape(pool)}-[0-9]+$")


def register_server_pool(
    pool: str,
    base_urls: list[str],
    model_id: str,
    *,
    context_length: int,
    max_output_tokens: int,
    model_defaults: dict[str, Any],
) -> LanguageModel:
    """Providers `pool`, `pool-2`, ... (one per server, at base_urls) serving model `model_id` (created with
    `model_defaults` the first time).

    Idempotent; the base URLs may change per run. Each server answers one request at a time, so each is a
    deployment with max_concurrent=1: routing makes a request wait for a free server rather than queue behind a
    busy one. Providers of the pool not running this time are disabled. Only what the running servers dictate is
    overwritten; an admin's edits to descriptions, prices and the model's `enabled` flag survive restarts.
    """
    served = {"upstream_model": model_id, "context_length": context_length, "max_output_tokens": max_output_tokens}
    with transaction.atomic():
        providers = []
        for index, url in enumerate(base_urls):
            provider, _ = Provider.objects.update_or_create(
                name=_pool_member(pool, index),
                defaults={"base_url": url, "enabled": True},
                create_defaults={
                    "base_url": url,
                    "enabled": True,
                    # The servers run on this machine: one that does not answer within 2 s is not running.
                    "connect_timeout": 2.0,
                    "read_timeout": 300.0,
                },
            )
            providers.append(provider)
        model, _ = LanguageModel.objects.update_or_create(
            public_id=model_id,
            defaults={"provider": providers[0], **served},
            create_defaults={"provider": providers[0], **served, **model_defaults},
        )
        for provider in providers:
            Deployment.objects.update_or_create(
                model=model,
                provider=provider,
                upstream_model=model_id,
                defaults={"max_concurrent": 1, "enabled": True},
            )
        stale = Provider.objects.filter(_pool(pool)).exclude(pk__in=[p.pk for p in providers])
        Deployment.objects.filter(model=model, provider__in=stale).update(enabled=False)
        stale.update(enabled=False)
    return model


def disable_server_pool(pool: str) -> bool:
    """Hide a pool's models while nothing serves them. True if one of its providers was enabled."""
    return Provider.objects.filter(_pool(pool), enabled=True).update(enabled=False) > 0
