"""The catalogue admin's question to a provider, which models it serves (its GET /models), asked through
gateway.upstream; GatewayConfig.ready() registers `list_models` with catalogue.services."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync

from catalogue.models import Provider
from catalogue.services import ListingFailed
from gateway import upstream
from gateway.errors import GatewayError


def list_models(provider: Provider) -> list[Any]:
    target = upstream.Target(
        name=provider.name,
        base_url=provider.base_url,
        api_key=provider.get_api_key(),
        connect_timeout=provider.connect_timeout,
        read_timeout=provider.read_timeout,
    )
    try:
        return async_to_sync(upstream.list_models)(target)
    except GatewayError as exc:
        raise ListingFailed(f"connection failed ({exc.status}): {exc.message}") from None
