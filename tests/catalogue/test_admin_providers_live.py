"""The provider check action served by the real ASGI server (where it runs on the server's event loop)."""

from __future__ import annotations

import re

import httpx
import pytest
from django.test import Client

from accounts.models import User
from catalogue.models import Provider
from tests.fake_upstream import FakeUpstream
from tests.live_server import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_check_connection_works_under_the_asgi_server(
    admin: User, fake_upstream: FakeUpstream, live_server: LiveServer
) -> None:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url)
    browser = Client()
    browser.force_login(admin)
    session = browser.cookies["sessionid"].value
    with httpx.Client(base_url=live_server.url, cookies={"sessionid": session}, timeout=20) as http:
        page = http.get("/admin/catalogue/provider/")
        assert page.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token
        answer = http.post(
            "/admin/catalogue/provider/",
            data={"csrfmiddlewaretoken": token.group(1), "action": "check_connection", "_selected_action": provider.pk},
            follow_redirects=True,
        )
    assert answer.status_code == 200
    assert "Provider fake: connected; 2 upstream model(s): fake-large, fake-small" in answer.text
