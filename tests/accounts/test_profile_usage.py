"""The profile's usage: totals and cost from the ledger, API and browser chat apart, and the chart's data."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from accounts import keys
from accounts.models import User
from tests.accounts.helpers import make_model, record
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db


def row(page: str, period: str, source: str) -> list[str]:
    match = re.search(rf'<tr data-period="{period}" data-source="{source}"[^>]*>(.*?)</tr>', page, re.S)
    assert match, f"no {period}/{source} row"
    return re.findall(r'<td class="num">([^<]*)</td>', match.group(1))


@pytest.fixture
def ledger(alice: User, bob: User) -> None:
    make_model("acme/chat-1")
    make_model("acme/chat-2")
    key, _ = keys.create_key(alice, "laptop")
    now = timezone.now()
    record(alice, "acme/chat-1", prompt=100, completion=20, key=key, cost="0.0012")
    record(alice, "acme/chat-1", prompt=50, completion=5, key=key, cost="0.0005", at=now - timedelta(days=2))
    record(alice, "acme/chat-2", prompt=7, completion=3, source=UsageRecord.Source.CHAT, cost="0.0001")
    # Outside the 30 days: counts all time only.
    record(alice, "acme/chat-2", prompt=1000, completion=1000, key=key, cost="1", at=now - timedelta(days=45))
    # Someone else's usage never shows on alice's page.
    record(bob, "acme/chat-1", prompt=999, completion=999, cost="9")


def test_usage_totals_on_the_profile_match_the_ledger(client: Client, alice: User, ledger: None) -> None:
    client.force_login(alice)
    page = client.get("/accounts/profile/").content.decode()
    # requests, prompt, completion, total, cost
    assert row(page, "recent", "api") == ["2", "150", "25", "175", "0.0017"]
    assert row(page, "recent", "chat") == ["1", "7", "3", "10", "0.0001"]
    assert row(page, "recent", "total") == ["3", "157", "28", "185", "0.0018"]
    assert row(page, "all", "api") == ["3", "1150", "1025", "2175", "1.0017"]

    mine = UsageRecord.objects.filter(user=alice).aggregate(p=Sum("prompt_tokens"), c=Sum("completion_tokens"))
    assert row(page, "all", "total")[:3] == [
        str(UsageRecord.objects.filter(user=alice).count()),
        str(mine["p"]),
        str(mine["c"]),
    ]


def test_each_key_shows_its_requests_and_tokens(client: Client, alice: User, ledger: None) -> None:
    client.force_login(alice)
    page = client.get("/accounts/profile/").content.decode()
    key_row = re.search(r'<tr data-key-id="\d+".*?</tr>', page, re.S)
    assert key_row
    assert re.findall(r'<td class="num">([^<]*)</td>', key_row.group(0)) == ["3", "2175"]


def test_the_chart_data_has_one_value_per_day_and_model(client: Client, alice: User, ledger: None) -> None:
    client.force_login(alice)
    response = client.get("/api/usage/daily/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Cache-Control"] == "no-store"
    data = response.json()
    today = timezone.localdate()
    assert data["days"] == 30 and len(data["labels"]) == 30
    assert data["labels"][-1] == today.isoformat()
    assert data["labels"][0] == (today - timedelta(days=29)).isoformat()
    series = {s["model"]: s["tokens"] for s in data["models"]}
    assert set(series) == {"acme/chat-1", "acme/chat-2"}
    assert all(len(tokens) == 30 for tokens in series.values())
    assert series["acme/chat-1"][-1] == 120 and series["acme/chat-1"][-3] == 55
    assert series["acme/chat-2"][-1] == 10 and sum(series["acme/chat-2"]) == 10
    sources = {s["source"]: s["tokens"] for s in data["sources"]}
    assert sources["api"][-1] == 120 and sources["chat"][-1] == 10
    assert data["totals"]["total"]["total_tokens"] == 185
    assert data["totals"]["chat"]["requests"] == 1
    assert Decimal(data["totals"]["total"]["cost"]) == Decimal("0.0018")


def test_the_chart_data_is_empty_but_complete_for_a_new_user(client: Client, bob: User) -> None:
    client.force_login(bob)
    data = client.get("/api/usage/daily/").json()
    assert data["models"] == [] and len(data["labels"]) == 30
    assert data["totals"]["total"]["requests"] == 0


def test_the_chart_data_is_only_ever_my_own(client: Client, bob: User, ledger: None) -> None:
    client.force_login(bob)
    data = client.get("/api/usage/daily/").json()
    assert [s["model"] for s in data["models"]] == ["acme/chat-1"]
    assert data["totals"]["total"]["total_tokens"] == 1998


def test_the_chart_data_refuses_anonymous_callers(client: Client, ledger: None) -> None:
    response = client.get("/api/usage/daily/")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
