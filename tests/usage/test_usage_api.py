"""/api/usage/ and /api/usage/daily/: one's own usage from the ledger, by source, per day and model."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts import keys
from accounts.models import User
from tests.accounts.helpers import make_model, record
from tests.inprocess import InProcessApp
from tests.signed_in import sign_in
from usage.models import UsageRecord


@pytest.fixture
def ledger(alice: User, bob: User, transactional_db: None) -> None:
    make_model("acme/chat-1")
    now = timezone.now()
    record(alice, "acme/chat-1", prompt=100, completion=20, cost="0.0012")
    record(alice, "acme/chat-1", prompt=7, completion=3, source=UsageRecord.Source.CHAT, cost="0.0001")
    record(alice, "acme/chat-1", prompt=1000, completion=1000, cost="1", at=now - timedelta(days=45))
    record(bob, "acme/chat-1", prompt=999, completion=999, cost="9")


def test_the_summary_splits_api_and_chat_recently_and_all_time(app: InProcessApp, alice: User, ledger: None) -> None:
    response = sign_in(app.client(), alice).get("/api/usage/")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    data = response.json()
    assert data["days"] == 30
    assert data["recent"]["api"]["total_tokens"] == 120 and data["recent"]["chat"]["requests"] == 1
    assert data["recent"]["total"]["requests"] == 2
    assert data["all_time"]["total"]["total_tokens"] == 2130
    assert Decimal(data["all_time"]["total"]["cost"]) == Decimal("1.0013")


def test_the_window_can_be_chosen_and_a_bad_one_is_a_400(app: InProcessApp, alice: User, ledger: None) -> None:
    client = sign_in(app.client(), alice)
    assert client.get("/api/usage/", params={"days": 60}).json()["recent"]["total"]["requests"] == 3
    daily = client.get("/api/usage/daily/", params={"days": 7}).json()
    assert daily["days"] == 7 and len(daily["labels"]) == 7
    for bad in ("0", "367", "x", "1.5", "٣"):
        response = client.get("/api/usage/daily/", params={"days": bad})
        assert response.status_code == 400, bad
        assert response.json()["error"]["param"] == "days"


@pytest.mark.parametrize("path", ["/api/usage/", "/api/usage/daily/"])
@pytest.mark.parametrize("days", ["9" * 4301, "0" * 4301 + "7", "-7", " 7", "7_0", ""])
def test_a_window_python_cannot_or_should_not_read_as_a_number_is_a_400_not_a_500(
    app: InProcessApp, alice: User, path: str, days: str
) -> None:
    response = sign_in(app.client(), alice).get(path, params={"days": days})
    assert response.status_code == 400, response.text[:200]
    error = response.json()["error"]
    assert error["param"] == "days" and "from 1 to 366" in error["message"]


def test_usage_is_only_ever_ones_own(app: InProcessApp, bob: User, ledger: None) -> None:
    client = sign_in(app.client(), bob)
    assert client.get("/api/usage/").json()["all_time"]["total"]["total_tokens"] == 1998
    daily = client.get("/api/usage/daily/").json()
    assert daily["totals"]["total"]["total_tokens"] == 1998


def test_a_script_reads_its_users_usage_with_a_key(app: InProcessApp, alice: User, ledger: None) -> None:
    _, secret = keys.create_key(alice, "script")
    data = app.client(headers={"Authorization": f"Bearer {secret}"}).get("/api/usage/").json()
    assert data["all_time"]["total"]["total_tokens"] == 2130


def test_anonymous_callers_get_401(app: InProcessApp, ledger: None) -> None:
    for path in ("/api/usage/", "/api/usage/daily/"):
        assert app.client().get(path).status_code == 401
