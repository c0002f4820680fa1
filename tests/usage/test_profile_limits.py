"""The profile page shows the user's limits and what remains of them."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from django.test import Client

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import LanguageModel
from core.clock import ManualClock
from tests.conftest import PASSWORD
from tests.usage.conftest import Caller
from usage import limits
from usage.models import Limit, UsageRecord


def _profile(user: User) -> str:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    response = client.get("/accounts/profile/")
    assert response.status_code == 200
    return response.content.decode()


def test_without_limits_the_profile_says_so(alice: User) -> None:
    assert "No rate limit or budget applies to your account." in _profile(alice)


def test_the_profile_shows_limits_and_what_remains(
    store: str, alice: User, priced_model: LanguageModel, clock: ManualClock
) -> None:
    clock.advance(0)  # nothing refills while the test runs, however slow the machine
    Limit.objects.create(requests_per_minute=5, tokens_per_minute=1000, budget_usd=Decimal("10"), budget_period="day")
    UsageRecord.objects.create(user=alice, model_public_id="priced/model", cost=Decimal("2.50"), source="chat")
    asyncio.run(limits.reserve(Caller(alice), priced_model, 100, 100))
    page = _profile(alice)
    assert "4 of 5 left now" in page
    assert "800 of 1000 left now" in page
    assert "$7.50 left of $10.00 this day ($2.50 spent)" in page


def test_key_limits_show_to_their_owner_only(alice: User, bob: User) -> None:
    key, _ = create_key(alice, "ci-runner")
    Limit.objects.create(api_key=key, requests_per_minute=7)
    assert "ci-runner" in _profile(alice) and key.display in _profile(alice)
    bobs = _profile(bob)
    assert "ci-runner" not in bobs and key.display not in bobs


@pytest.fixture
def store() -> str:
    return "memory"
