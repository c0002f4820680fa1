"""The admin's index puts what an operator looks for first and the security tables last, each section once."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from accounts.models import User

CAPTION = re.compile(r'<caption>\s*<a [^>]*class="section"[^>]*>(.*?)</a>', re.S)
ROW = re.compile(r'<tr class="model-([a-z0-9]+)')


def _index(admin: User) -> tuple[list[str], list[str]]:
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/")
    assert page.status_code == 200
    text = page.content.decode()
    main = text[text.index('id="content-main"') :]
    return [html.unescape(c) for c in CAPTION.findall(main)], ROW.findall(main)


@pytest.mark.django_db
def test_users_groups_models_providers_keys_and_usage_come_first(admin: User) -> None:
    sections, rows = _index(admin)
    assert sections[:4] == ["Users and groups", "Models and providers", "API keys", "Usage and limits"]
    assert rows[:8] == ["user", "group", "invite", "languagemodel", "provider", "apikey", "usagerecord", "limit"]


@pytest.mark.django_db
def test_the_security_tables_come_last_and_no_section_shows_twice(admin: User) -> None:
    sections, rows = _index(admin)
    assert sections[-1] == "Security: audit log and failed logins"
    assert rows[-4:] == ["logentry", "accessattempt", "accessfailurelog", "accesslog"]
    assert len(sections) == len(set(sections))
    assert "Accounts" not in sections and "Axes" not in sections
    assert len(rows) == len(set(rows)), "every table is listed once"


@pytest.mark.django_db
def test_an_apps_own_page_still_lists_that_app(admin: User) -> None:
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/axes/")
    assert page.status_code == 200
    assert ROW.findall(page.content.decode()[page.content.decode().index('id="content-main"') :]) == [
        "accessattempt",
        "accessfailurelog",
        "accesslog",
    ]
