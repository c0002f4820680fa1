"""The analytics page in Chromium: every chart drawn from the vendored Chart.js under the site's CSP, the
breakdown redrawn when another dimension is chosen, no JavaScript error."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from tests.browser import log_in, open_page
from tests.live_server import LiveServer
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def page(chromium_browser: Any, live_server: LiveServer) -> Iterator[Any]:
    yield from open_page(chromium_browser, live_server.url, 1200)


def test_staff_see_the_analytics_charts_drawn(admin: User, alice: User, page: Any) -> None:
    from playwright.sync_api import expect

    for user, tokens in ((alice, 300), (admin, 40)):
        UsageRecord.objects.create(user=user, model_public_id="acme/chat", prompt_tokens=tokens, completion_tokens=7,
                                   cost=Decimal("0.1"), latency_ms=420, created_at=timezone.now())  # fmt: skip
    log_in(page, "admin")
    page.goto("/analytics/")
    for chart in ("requests", "tokens", "cost", "latency", "breakdown"):
        expect(page.locator(f'#chart-{chart}[data-drawn="true"]')).to_be_attached()
    expect(page.locator("#analytics-top-users tbody tr").first).to_have_attribute("data-user", "alice")
    page.select_option("#breakdown-by", "user")
    page.select_option("#breakdown-metric", "cost")
    expect(page.locator('#chart-breakdown[data-drawn="true"]')).to_be_attached()
    assert page.locator("#analytics-status").inner_text() == ""
