"""Catalogue upkeep for the admin: ask a provider which models it serves, and import chosen ones.

The HTTP call itself lives in gateway.upstream (the only module that imports httpx).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction

from catalogue.models import LanguageModel, Provider
from gateway import upstream
from gateway.errors import GatewayError


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


def _target(provider: Provider) -> upstream.Target:
    return upstream.Target(
        name=provider.name,
        base_url=provider.base_url,
        api_key=provider.get_api_key(),
        connect_timeout=provider.connect_timeout,
        read_timeout=provider.read_timeout,
    )


def check_provider(provider: Provider) -> CheckResult:
    """Connect to the provider and list its models; a failure is described, never raised.

    Under ASGI this runs on the server's event loop and reuses its pooled upstream client.
    """
    try:
        items = async_to_sync(upstream.list_models)(_target(provider))
    except GatewayError as exc:
        return CheckResult(ok=False, error=f"connection failed ({exc.status}): {exc.message}")
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
