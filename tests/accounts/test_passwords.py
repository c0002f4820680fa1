"""Password reset by email and the password change page; form errors are readable."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
NEW = "a-brand-new-passphrase-42"


def test_a_password_reset_link_arrives_by_email_and_sets_a_new_password(client: Client, alice: User) -> None:
    response = client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+)", message.body)
    assert link, message.body
    form_page = client.get(link.group(1), follow=True)
    assert form_page.status_code == 200
    action = form_page.redirect_chain[-1][0] if form_page.redirect_chain else link.group(1)
    done = client.post(action, {"password1": NEW, "password2": NEW})
    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(NEW)
    assert Client().post("/accounts/login/", {"username": "alice", "password": NEW})["Location"] == "/"


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client: Client, alice: User) -> None:
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302  # nobody learns which addresses have accounts
    assert all("reset/key" not in m.body for m in mail.outbox)


def test_a_reset_link_works_once(client: Client, alice: User) -> None:
    client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    path = re.search(r"http://testserver(/accounts/password/reset/key/\S+)", mail.outbox[0].body).group(1)  # type: ignore[union-attr]
    page = client.get(path, follow=True)
    action = page.redirect_chain[-1][0] if page.redirect_chain else path
    client.post(action, {"password1": NEW, "password2": NEW})
    again = Client().get(path, follow=True)
    assert b"invalid" in again.content.lower()


def test_the_password_change_page_needs_the_current_password(client: Client, alice: User) -> None:
    client.force_login(alice)
    page = client.get("/accounts/password/change/")
    assert page.status_code == 200 and b"Current Password" in page.content
    wrong = client.post("/accounts/password/change/", {"oldpassword": "nope", "password1": NEW, "password2": NEW})
    assert wrong.status_code == 200 and b"Please type your current password." in wrong.content
    weak = client.post("/accounts/password/change/", {"oldpassword": PASSWORD, "password1": "123", "password2": "123"})
    assert b"This password is too short." in weak.content
    ok = client.post("/accounts/password/change/", {"oldpassword": PASSWORD, "password1": NEW, "password2": NEW})
    assert ok.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(NEW)
    assert client.get("/").status_code == 200  # still signed in here


def test_changing_the_password_ends_the_other_sessions(alice: User) -> None:
    laptop, phone = Client(), Client()
    laptop.force_login(alice)
    phone.force_login(alice)
    laptop.post("/accounts/password/change/", {"oldpassword": PASSWORD, "password1": NEW, "password2": NEW})
    assert laptop.get("/").status_code == 200
    assert phone.get("/").status_code == 302


def test_the_security_page_links_password_and_two_factor(client: Client, alice: User) -> None:
    client.force_login(alice)
    page = client.get("/accounts/security/").content.decode()
    assert "/accounts/password/change/" in page and "/accounts/2fa/totp/activate/" in page
