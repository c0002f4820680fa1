"""Admin over people and keys: users with activity and usage, (de)activation, admin rights, password
reset, key list and revocation without secrets, and the audit log of all of it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.test import Client
from django.utils import timezone

from accounts import keys
from accounts.models import User
from tests.accounts.helpers import make_model, record
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Client, admin: User) -> Client:
    client.force_login(admin)
    return client


def act(client: Client, url: str, name: str, *pks: int):  # type: ignore[no-untyped-def]
    return client.post(url, {"action": name, "_selected_action": [str(pk) for pk in pks]}, follow=True)


def user_row(page: str, username: str) -> str:
    match = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*>{username}</a>.*?</tr>", page, re.S)
    assert match, f"no row for {username}"
    return match.group(0)


def test_the_user_list_shows_last_activity_and_usage(admin_client: Client, alice: User, bob: User) -> None:
    make_model("acme/chat-1")
    used_at = timezone.now() - timedelta(hours=3)
    record(alice, "acme/chat-1", prompt=100, completion=23, cost="0.5", at=used_at)
    record(alice, "acme/chat-1", prompt=10, completion=1, cost="0.25", at=used_at - timedelta(days=1))
    page = admin_client.get("/admin/accounts/user/").content.decode()
    row = user_row(page, "alice")
    assert ">2<" in row and ">134<" in row and ">0.7500<" in row
    assert timezone.localtime(used_at).strftime("%Y") in row
    assert ">0<" in user_row(page, "bob")


def test_users_can_be_sorted_by_usage(admin_client: Client, alice: User, bob: User) -> None:
    make_model("acme/chat-1")
    record(bob, "acme/chat-1", prompt=1000, completion=1)
    page = admin_client.get("/admin/accounts/user/?o=-6").content.decode()
    assert page.index(">bob</a>") < page.index(">alice</a>")


def test_deactivating_a_user_is_recorded_and_blocks_their_keys(admin_client: Client, alice: User) -> None:
    _, secret = keys.create_key(alice, "laptop")
    page = act(admin_client, "/admin/accounts/user/", "deactivate", alice.pk).content.decode()
    assert "1 user(s) deactivated" in page
    alice.refresh_from_db()
    assert not alice.is_active
    found = keys.find_key(secret)
    assert found is not None and not found.user.is_active
    entry = LogEntry.objects.get(object_id=str(alice.pk), action_flag=CHANGE)
    assert entry.user.username == "admin" and entry.change_message == "Deactivated."

    act(admin_client, "/admin/accounts/user/", "activate", alice.pk)
    alice.refresh_from_db()
    assert alice.is_active


def test_a_deactivated_user_is_logged_out_of_the_browser(client: Client, admin: User, alice: User) -> None:
    alice_browser = Client()
    alice_browser.force_login(alice)
    assert alice_browser.get("/accounts/profile/").status_code == 200
    client.force_login(admin)
    act(client, "/admin/accounts/user/", "deactivate", alice.pk)
    assert alice_browser.get("/accounts/profile/").status_code == 302


def test_an_admin_cannot_deactivate_themself(admin_client: Client, admin: User) -> None:
    page = act(admin_client, "/admin/accounts/user/", "deactivate", admin.pk).content.decode()
    assert "You cannot deactivate yourself" in page
    admin.refresh_from_db()
    assert admin.is_active


def test_make_admin_gives_full_admin_rights(admin_client: Client, alice: User) -> None:
    act(admin_client, "/admin/accounts/user/", "make_admin", alice.pk)
    alice.refresh_from_db()
    assert alice.is_staff and alice.is_superuser
    alice_client = Client()
    alice_client.force_login(alice)
    assert alice_client.get("/admin/catalogue/provider/").status_code == 200
    act(admin_client, "/admin/accounts/user/", "remove_admin", alice.pk)
    alice.refresh_from_db()
    assert not alice.is_staff and not alice.is_superuser


def test_an_admin_resets_a_password_and_it_is_recorded(admin_client: Client, alice: User) -> None:
    new = "a-brand-new-pass-phrase-42"
    response = admin_client.post(
        f"/admin/accounts/user/{alice.pk}/password/", {"password1": new, "password2": new, "usable_password": "true"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    alice.refresh_from_db()
    assert alice.check_password(new) and not alice.check_password(PASSWORD)
    entry = LogEntry.objects.filter(object_id=str(alice.pk)).latest("action_time")
    assert "password" in entry.get_change_message().lower()
    assert new not in entry.change_message


def test_the_key_list_never_shows_a_secret(admin_client: Client, alice: User) -> None:
    key, secret = keys.create_key(alice, "laptop")
    listing = admin_client.get("/admin/accounts/apikey/").content.decode()
    detail = admin_client.get(f"/admin/accounts/apikey/{key.pk}/change/").content.decode()
    for page in (listing, detail):
        assert key.display in page
        assert secret not in page and key.key_hash not in page
    assert admin_client.get("/admin/accounts/apikey/add/").status_code == 403


def test_an_admin_revokes_keys_at_once_with_an_audit_entry(admin_client: Client, alice: User) -> None:
    key, secret = keys.create_key(alice, "laptop")
    page = act(admin_client, "/admin/accounts/apikey/", "revoke_keys", key.pk).content.decode()
    assert "1 key(s) revoked" in page
    found = keys.find_key(secret)
    assert found is not None and not found.is_active
    assert LogEntry.objects.get(object_id=str(key.pk)).change_message == "Revoked."
    assert ">revoked<" in admin_client.get("/admin/accounts/apikey/?status=revoked").content.decode()


def test_the_audit_log_shows_who_changed_what_and_when(admin_client: Client, alice: User) -> None:
    act(admin_client, "/admin/accounts/user/", "deactivate", alice.pk)
    page = admin_client.get("/admin/admin/logentry/").content.decode()
    row = user_row(page, "alice")
    assert "admin" in row and "changed" in row and "Deactivated." in row
    entry = LogEntry.objects.get(object_id=str(alice.pk))
    assert admin_client.get(f"/admin/admin/logentry/{entry.pk}/change/").status_code == 200
    assert admin_client.post(f"/admin/admin/logentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert LogEntry.objects.filter(pk=entry.pk).exists()


def test_staff_without_superuser_rights_cannot_read_the_audit_log(client: Client, alice: User) -> None:
    alice.is_staff = True
    alice.save()
    client.force_login(alice)
    assert client.get("/admin/admin/logentry/").status_code == 403
