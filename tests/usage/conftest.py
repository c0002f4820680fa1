"""Fixtures for the limits tests: both counter stores, a priced model, callers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from accounts.models import ApiKey, User
from catalogue.models import LanguageModel, Provider
from tests.conversations.conftest import chat_model, connect, conversation  # noqa: F401
from tests.gateway.conftest import gateway, live_gateway  # noqa: F401
from tests.scaleout.redis_server import redis_server, store_under_test  # noqa: F401
from usage import limits


@dataclass(frozen=True)
class Caller:
    """The shape gateway.auth.Caller has; limits only reads user and api_key."""

    user: User
    api_key: ApiKey | None = None
    source: str = "api"


@pytest.fixture(autouse=True)
def _clean_limits_state() -> Iterator[None]:
    limits.forget_local_state()
    yield
    limits.forget_local_state()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, settings: Any) -> str:
    """Runs the test once with in-process counters and once with Redis."""
    return store_under_test(request, settings)


@pytest.fixture
def priced_model(transactional_db: None) -> LanguageModel:
    """$1,000 per million tokens either way: one token costs $0.001."""
    provider = Provider.objects.create(name="priced", base_url="http://127.0.0.1:9/v1")
    return LanguageModel.objects.create(
        public_id="priced/model",
        provider=provider,
        upstream_model="m",
        max_output_tokens=100,
        input_price_per_million=Decimal("1000"),
        output_price_per_million=Decimal("1000"),
    )


@pytest.fixture(scope="session", autouse=True)
def _close_connection_pool(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Pooled connections of worker threads would keep the test database from being dropped."""
    yield
    from django.db import connections

    for connection in connections.all():
        close_pool = getattr(connection, "close_pool", None)
        if close_pool is not None:
            close_pool()
