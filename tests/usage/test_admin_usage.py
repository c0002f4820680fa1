"""Admin over the usage ledger: filters by user, key, model and date; the overview per day, per model and
top users."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.test import Client
from django.utils import timezone

from accounts import keys
from accounts.models import User
from catalogue.models import LanguageModel
from tests.accounts.helpers import make_model, record
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Client, admin: User) -> Client:
    client.force_login(admin)
    return client


@pytest.fixture
def ledger(alice: User, bob: User) -> dict[str, object]:
    make_model("acme/chat-1")
    make_model("acme/chat-2")
    laptop, _ = keys.create_key(alice, "laptop")
    now = timezone.now()
    record(alice, "acme/chat-1", prompt=10, completion=1, key=laptop, cost="0.01")
    record(alice, "acme/chat-2", prompt=20, completion=2, source=UsageRecord.Source.CHAT, cost="0.02")
    record(bob, "acme/chat-1", prompt=300, completion=3, cost="0.3", at=now - timedelta(days=3))
    record(bob, "acme/chat-1", prompt=4000, completion=4, cost="4", at=now - timedelta(days=60))
    return {"laptop": laptop, "now": now}


def count(page: str) -> int:
    match = re.search(r"(\d+) (?:usage record|usage records)\b", page)
    assert match, "no result count on the page"
    return int(match.group(1))


def test_the_ledger_is_filterable_by_user_key_model_and_date(
    admin_client: Client, alice: User, bob: User, ledger: dict[str, object]
) -> None:
    base = "/admin/usage/usagerecord/"
    assert count(admin_client.get(base).content.decode()) == 4
    assert count(admin_client.get(f"{base}?user__id__exact={bob.pk}").content.decode()) == 2
    laptop = ledger["laptop"]
    assert count(admin_client.get(f"{base}?api_key__id__exact={laptop.pk}").content.decode()) == 1  # type: ignore[attr-defined]
    model = LanguageModel.objects.get(public_id="acme/chat-2")
    assert count(admin_client.get(f"{base}?model__id__exact={model.pk}").content.decode()) == 1
    since = quote((timezone.now() - timedelta(days=7)).isoformat())  # aware: "+00:00" encoded
    assert count(admin_client.get(f"{base}?created_at__gte={since}").content.decode()) == 3
    assert count(admin_client.get(f"{base}?source__exact=chat").content.decode()) == 1


def test_the_ledger_filter_lists_offer_users_keys_and_models(admin_client: Client, ledger: dict[str, object]) -> None:
    page = admin_client.get("/admin/usage/usagerecord/").content.decode()
    for label in ("By user", "By api key", "By model", "By created at"):
        assert label.lower() in page.lower()
    laptop = ledger["laptop"]
    assert laptop.display in page  # type: ignore[attr-defined]


def test_ledger_rows_cannot_be_added_or_edited(admin_client: Client, ledger: dict[str, object]) -> None:
    row = UsageRecord.objects.first()
    assert row is not None
    assert admin_client.get("/admin/usage/usagerecord/add/").status_code == 403
    response = admin_client.post(f"/admin/usage/usagerecord/{row.pk}/change/", {"prompt_tokens": "0"})
    assert response.status_code == 403
    row.refresh_from_db()
    assert row.prompt_tokens != 0


def test_the_overview_shows_usage_per_day_per_model_and_top_users(
    admin_client: Client, alice: User, bob: User, ledger: dict[str, object]
) -> None:
    listing = admin_client.get("/admin/usage/usagerecord/").content.decode()
    assert "/admin/usage/usagerecord/overview/" in listing
    response = admin_client.get("/admin/usage/usagerecord/overview/")
    assert response.status_code == 200
    page = response.content.decode()
    data_match = re.search(r'<script id="usage-data" type="application/json">(.*?)</script>', page, re.S)
    assert data_match
    data = json.loads(data_match.group(1))
    series = {s["model"]: s["tokens"] for s in data["models"]}
    assert series["acme/chat-1"][-1] == 11 and series["acme/chat-1"][-4] == 303
    assert series["acme/chat-2"][-1] == 22
    assert sum(sum(tokens) for tokens in series.values()) == 336  # the 60-day-old row is outside the window

    top = re.findall(r'<tr data-user="([^"]+)">', page)
    assert top == ["bob", "alice"]
    alice_row = re.search(r'<tr data-user="alice">(.*?)</tr>', page, re.S)
    assert alice_row
    # requests, api, chat, tokens, cost
    assert re.findall(r'<td class="num">([^<]*)</td>', alice_row.group(1)) == ["2", "1", "1", "33", "0.0300"]
    totals = re.search(r'<tr data-source="total">(.*?)</tr>', page, re.S)
    assert totals and re.findall(r'<td class="num">([^<]*)</td>', totals.group(1)) == ["3", "330", "6", "0.3300"]


def test_only_admins_see_the_overview(client: Client, alice: User) -> None:
    client.force_login(alice)
    response = client.get("/admin/usage/usagerecord/overview/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
