"""Every page carries the Content-Security-Policy; private pages are never cached; no template
holds an inline script or style (the policy would refuse it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from accounts.models import User

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


@pytest.mark.parametrize(
    ("path", "signed_in"),
    [
        ("/accounts/login/", False),
        ("/accounts/signup/", False),
        ("/", True),
        ("/accounts/profile/", True),
        ("/admin/", True),
        ("/admin/accounts/user/", True),
        ("/admin/usage/usagerecord/overview/", True),
    ],
)
def test_every_page_has_the_content_security_policy(client: Client, admin: User, path: str, signed_in: bool) -> None:
    if signed_in:
        client.force_login(admin)
    response = client.get(path)
    assert response.status_code == 200, path
    policy = directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no other host
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:", "blob:"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["connect-src"] == ["'self'", "ws://testserver"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]


def test_over_https_the_socket_origin_is_wss(client: Client, alice: User) -> None:
    client.force_login(alice)
    response = client.get("/", secure=True)
    assert directives(response["Content-Security-Policy"])["connect-src"] == ["'self'", "wss://testserver"]


@pytest.mark.parametrize("path", ["/", "/accounts/profile/"])
def test_private_pages_are_never_stored_by_caches(client: Client, alice: User, path: str) -> None:
    client.force_login(alice)
    assert "no-store" in client.get(path)["Cache-Control"]


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I), "an inline script"),
    (re.compile(r"<style", re.I), "a <style> element"),
    (re.compile(r"\sstyle=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+=", re.I), "an inline event handler"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def test_no_template_has_inline_script_or_style() -> None:
    found = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        text = template.read_text()
        for pattern, what in INLINE:
            if pattern.search(text):
                found.append(f"{template.relative_to(ROOT)}: {what}")
    assert found == []
