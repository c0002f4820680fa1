"""The analytics page and its CSV: staff see everyone's usage, a group's managers their group's, nobody else
anything; a bad date range is a form error, never a 500."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts import groups, keys
from accounts.models import User
from catalogue.models import Deployment, LanguageModel, Provider
from core.clock import ManualClock, use_clock
from tests.conftest import make_user
from usage import analytics
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db

TODAY = datetime(2026, 3, 10, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _today() -> Any:
    previous = use_clock(ManualClock(TODAY.timestamp()))
    yield
    use_clock(previous)


@pytest.fixture
def ledger(alice: User, bob: User) -> dict[str, Any]:
    """alice manages research (carol in it); bob manages sales; usage billed to each, and some to no group."""
    research, _ = groups.add_group("research")
    sales, _ = groups.add_group("sales")
    carol = make_user("carol")
    groups.add_manager(research, alice)
    groups.add_member(research, carol)
    groups.add_manager(sales, bob)
    provider = Provider.objects.create(name="acme", base_url="http://127.0.0.1:9/v1")
    model = LanguageModel.objects.create(public_id="acme/chat", provider=provider, upstream_model="chat-1")
    slow = Deployment.objects.create(model=model, provider=provider, upstream_model="chat-slow")
    key, _ = keys.create_key(carol, "nightly")

    def bill(user: User, group: Group | None, **fields: Any) -> None:
        values = {"model_public_id": "acme/chat", "prompt_tokens": 100, "completion_tokens": 20,
                  "cost": Decimal("0.5"), "latency_ms": 400, "created_at": TODAY}  # fmt: skip
        UsageRecord.objects.create(user=user, group=group, **{**values, **fields})

    bill(carol, research, api_key=key, deployment=slow, latency_ms=9000)
    bill(carol, research, created_at=TODAY - timedelta(days=1), status=500, prompt_tokens=0, completion_tokens=0)
    bill(alice, research, model_public_id="acme/large", cost=Decimal("2"))
    bill(bob, sales, prompt_tokens=5000)
    bill(bob, None, created_at=TODAY - timedelta(days=60))  # outside the default range
    return {"research": research, "sales": sales, "key": key}


def _as(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _csv(answer: Any) -> list[str]:
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    return b"".join(answer.streaming_content).decode().splitlines()


def test_staff_see_everyones_usage_in_the_range(ledger: dict[str, Any], admin: User) -> None:
    page = _as(admin).get("/analytics/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-user="bob"><td>bob</td><td class="num">1</td><td class="num">0</td><td class="num">5020</td>' in html
    assert (
        'data-user="carol"><td>carol</td><td class="num">2</td><td class="num">1</td><td class="num">120</td>' in html
    )
    assert (
        'data-deployment="acme/chat-slow"><td>acme/chat-slow</td><td>acme/chat</td><td class="num">14650</td>' in html
    )
    data = page.context["data"]
    assert data["labels"][-1] == "2026-03-10" and len(data["labels"]) == 30
    assert data["daily"]["requests"][-2:] == [1, 3] and data["daily"]["errors"][-2:] == [1, 0]
    assert {series["label"] for series in data["by"]["group"]["series"]} == {"research", "sales"}
    assert 'src="/static/js/analytics.js"' in html and "<script>" not in html
    wider = _as(admin).get("/analytics/?start=2026-01-01&end=2026-03-10")
    assert 'data-user="bob"><td>bob</td><td class="num">2</td>' in wider.content.decode()


def test_the_csv_has_a_row_per_day_model_user_group_and_key(ledger: dict[str, Any], admin: User) -> None:
    lines = _csv(_as(admin).get("/analytics.csv?start=2026-03-09&end=2026-03-10"))
    key = ledger["key"]
    assert lines == [
        "day,model,user,group,key,requests,errors,input_tokens,output_tokens,cost_usd,latency_avg_ms,latency_p95_ms",
        "2026-03-09,acme/chat,carol,research,(browser or session),1,1,0,0,0.50000000,400,488",
        "2026-03-10,acme/chat,bob,sales,(browser or session),1,0,5000,20,0.50000000,400,488",
        f"2026-03-10,acme/chat,carol,research,sk-{key.prefix}… nightly,1,0,100,20,0.50000000,9000,14650",
        "2026-03-10,acme/large,alice,research,(browser or session),1,0,100,20,2.00000000,400,488",
    ]


def test_a_groups_manager_sees_only_what_was_billed_to_the_group(ledger: dict[str, Any], alice: User) -> None:
    research = ledger["research"]
    page = _as(alice).get(f"/accounts/groups/{research.pk}/analytics/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-user="carol"' in html and 'data-user="alice"' in html and 'data-user="bob"' not in html
    assert {series["label"] for series in page.context["data"]["by"]["group"]["series"]} == {"research"}
    lines = _csv(_as(alice).get(f"/accounts/groups/{research.pk}/analytics.csv"))
    assert len(lines) == 4 and all(",research," in line for line in lines[1:])
    assert (
        f"/accounts/groups/{research.pk}/analytics/"
        in _as(alice).get(f"/accounts/groups/{research.pk}/usage/").content.decode()
    )


@pytest.mark.parametrize("report", ["analytics/", "analytics.csv"])
def test_another_groups_manager_a_member_and_staff_are_refused_a_groups_analytics(
    ledger: dict[str, Any], bob: User, admin: User, report: str
) -> None:
    url = f"/accounts/groups/{ledger['research'].pk}/{report}"
    for outsider in (bob, User.objects.get(username="carol"), admin):
        assert _as(outsider).get(url).status_code == 404
    assert Client().get(url).status_code == 302  # to the sign-in


@pytest.mark.parametrize("url", ["/analytics/", "/analytics.csv"])
def test_only_staff_reach_the_sites_analytics(ledger: dict[str, Any], alice: User, url: str) -> None:
    assert _as(alice).get(url).status_code == 404  # a group's manager too
    assert Client().get(url).status_code == 302


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("start=last+week", "The start date must be a date written YYYY-MM-DD"),
        ("start=2026-03-10&end=2026-03-01", "is after the end date"),
        ("start=2020-01-01", "spans more than 400 days"),
        ("end=2026-02-31", "is not a day of the calendar"),
    ],
)
def test_a_bad_date_range_is_a_form_error(
    ledger: dict[str, Any], admin: User, alice: User, query: str, reason: str
) -> None:
    page = _as(admin).get(f"/analytics/?{query}")
    assert page.status_code == 400
    assert 'id="analytics-range-error"' in page.content.decode() and reason in page.content.decode()
    csv = _as(admin).get(f"/analytics.csv?{query}")
    assert csv.status_code == 400 and reason in csv.content.decode()
    group_page = _as(alice).get(f"/accounts/groups/{ledger['research'].pk}/analytics/?{query}")
    assert group_page.status_code == 400 and reason in group_page.content.decode()


def test_the_admin_index_links_to_the_analytics(admin: User) -> None:
    assert 'href="/analytics/"' in _as(admin).get("/admin/").content.decode()


def test_a_breakdown_shows_the_largest_values_and_the_rest_as_other(
    ledger: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analytics, "TOP_SERIES", 1)
    analytics.refresh()
    by_user = analytics.report(analytics.Scope(date(2026, 3, 9), date(2026, 3, 10)))["by"]["user"]["series"]
    assert [series["label"] for series in by_user] == ["bob", "other (2)"]
    assert by_user[0]["tokens"] == [0, 5020] and by_user[1]["tokens"] == [0, 240]
    assert by_user[1]["requests"] == [1, 2] and by_user[1]["errors"] == [1, 0]
