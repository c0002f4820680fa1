"""SIGNUP decides who may create an account: open, invite (a link from an admin or a member, used
once), approval (the account waits, inactive, for an admin), closed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.utils import timezone

from accounts.models import Invite, User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def signup(client: Client, username: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/accounts/signup/", {"username": username, "email": "", "password1": PASSWORD, "password2": PASSWORD}
    )


def make_invite(client: Client, user: User) -> str:
    client.force_login(user)
    page = client.post("/accounts/invites/").content.decode()
    client.logout()
    match = re.search(r'<code id="invite-link">http://testserver(/accounts/invite/[^<]+/)</code>', page)
    assert match, page
    return match.group(1)


def test_open_sign_up_is_the_default(client: Client, settings: object) -> None:
    assert settings.SIGNUP == "open"  # type: ignore[attr-defined]
    assert signup(client, "carol").status_code == 302
    assert User.objects.get(username="carol").is_active


def test_closed_sign_up_creates_no_account_and_says_why(client: Client, settings: object) -> None:
    settings.SIGNUP = "closed"  # type: ignore[attr-defined]
    page = client.get("/accounts/signup/")
    assert b"does not take new sign-ups" in page.content
    signup(client, "carol")
    assert not User.objects.filter(username="carol").exists()
    assert b"Sign up" not in client.get("/accounts/login/").content.split(b"<main")[1]


def test_invite_sign_up_needs_a_link_which_works_once(client: Client, settings: object, alice: User) -> None:
    settings.SIGNUP = "invite"  # type: ignore[attr-defined]
    assert b"by invitation only" in client.get("/accounts/signup/").content
    signup(client, "mallory")
    assert not User.objects.filter(username="mallory").exists()

    link = make_invite(client, alice)
    assert client.get(link).status_code == 302
    page = client.get("/accounts/signup/")
    assert b"Invited by alice" in page.content
    assert signup(client, "carol").status_code == 302
    carol = User.objects.get(username="carol")
    invite = Invite.objects.get()
    assert invite.used_by == carol and invite.created_by == alice
    assert LogEntry.objects.filter(object_id=str(invite.pk), user=alice).exists()

    # The link is spent; another visitor gets nothing from it.
    other = Client()
    assert other.get(link).status_code == 404
    signup(other, "dave")
    assert not User.objects.filter(username="dave").exists()


def test_an_invited_member_can_invite_in_turn(client: Client, settings: object, alice: User) -> None:
    settings.SIGNUP = "invite"  # type: ignore[attr-defined]
    client.get(make_invite(client, alice))
    signup(client, "carol")
    carol = User.objects.get(username="carol")
    newcomer = Client()
    newcomer.get(make_invite(Client(), carol))
    assert signup(newcomer, "dave").status_code == 302
    assert User.objects.get(username="dave").invited_by.created_by == carol  # type: ignore[attr-defined]


def test_an_expired_invite_is_refused(client: Client, settings: object, alice: User) -> None:
    settings.SIGNUP = "invite"  # type: ignore[attr-defined]
    link = make_invite(client, alice)
    Invite.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(link).status_code == 404
    signup(client, "carol")
    assert not User.objects.filter(username="carol").exists()


def test_invites_are_off_in_other_modes(client: Client, alice: User) -> None:
    client.force_login(alice)
    assert client.post("/accounts/invites/").status_code == 404
    assert not Invite.objects.exists()


def test_approval_sign_up_waits_for_an_admin(client: Client, settings: object, admin: User) -> None:
    settings.SIGNUP = "approval"  # type: ignore[attr-defined]
    response = signup(client, "carol")
    carol = User.objects.get(username="carol")
    assert not carol.is_active
    assert b"an administrator approves new accounts" in client.get(response["Location"]).content
    assert client.get("/").status_code == 302  # not signed in

    visitor = Client()
    login = visitor.post("/accounts/login/", {"username": "carol", "password": PASSWORD}, follow=True)
    assert b"approves new accounts" in login.content
    assert visitor.get("/").status_code == 302

    admin_client = Client()
    admin_client.force_login(admin)
    admin_client.post("/admin/accounts/user/", {"action": "activate", "_selected_action": [str(carol.pk)]})
    carol.refresh_from_db()
    assert carol.is_active
    assert Client().post("/accounts/login/", {"username": "carol", "password": PASSWORD})["Location"] == "/"
