"""Staff powers: only a superuser grants or removes staff and superuser rights or touches a staff
account; the audit log records promotions, and users' own key creations and revocations."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import ApiKey, User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
USERS = "/admin/accounts/user/"


@pytest.fixture
def staff(db: None) -> User:
    """Staff with every permission on accounts (users, keys), but no superuser."""
    user = User.objects.create_user("stella", "stella@example.com", PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="accounts"))
    return user


@pytest.fixture
def staff_client(staff: User) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def admin_client(admin: User) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def act(client: Client, name: str, *pks: int):  # type: ignore[no-untyped-def]
    return client.post(USERS, {"action": name, "_selected_action": [str(pk) for pk in pks]}, follow=True)


def change_form(user: User, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "username": user.username,
        "email": user.email,
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("who", ["alice", "stella"])
def test_staff_cannot_make_anyone_admin_with_the_action(
    staff_client: Client, alice: User, staff: User, who: str
) -> None:
    target = alice if who == "alice" else staff
    page = staff_client.get(USERS).content.decode()
    assert "make_admin" not in page
    act(staff_client, "make_admin", target.pk)
    target.refresh_from_db()
    assert not target.is_superuser and (target.is_staff == (who == "stella"))


def test_staff_cannot_grant_powers_through_the_change_form(staff_client: Client, alice: User) -> None:
    response = staff_client.post(
        f"{USERS}{alice.pk}/change/",
        change_form(alice, first_name="Alice", is_staff="on", is_superuser="on"),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    alice.refresh_from_db()
    assert alice.first_name == "Alice"  # the ordinary fields still change
    assert not alice.is_staff and not alice.is_superuser


def test_staff_cannot_change_themselves_or_other_staff(staff_client: Client, staff: User, admin: User) -> None:
    for target in (staff, admin):
        response = staff_client.post(f"{USERS}{target.pk}/change/", change_form(target, is_superuser="on"))
        assert response.status_code == 403
    staff.refresh_from_db()
    assert not staff.is_superuser


def test_staff_cannot_reset_an_admins_password_or_deactivate_them(staff_client: Client, admin: User) -> None:
    response = staff_client.post(
        f"{USERS}{admin.pk}/password/", {"password1": "taken-over-1234", "password2": "taken-over-1234"}
    )
    assert response.status_code == 403
    act(staff_client, "deactivate", admin.pk)
    admin.refresh_from_db()
    assert admin.check_password(PASSWORD) and admin.is_active


def test_staff_still_manage_ordinary_accounts(staff_client: Client, alice: User) -> None:
    act(staff_client, "deactivate", alice.pk)
    alice.refresh_from_db()
    assert not alice.is_active


def test_a_superuser_promotes_through_the_form_and_the_audit_log_records_it(
    admin_client: Client, alice: User, admin: User
) -> None:
    response = admin_client.post(f"{USERS}{alice.pk}/change/", change_form(alice, is_staff="on"))
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.is_staff
    entry = LogEntry.objects.get(object_id=str(alice.pk), action_flag=CHANGE)
    assert entry.user == admin and "Staff status" in entry.get_change_message()


def test_a_users_own_key_creation_and_revocation_are_in_the_audit_log(client: Client, alice: User) -> None:
    client.force_login(alice)
    client.post("/accounts/profile/", {"name": "laptop"})
    key = ApiKey.objects.get(user=alice)
    client.post(f"/accounts/profile/keys/{key.pk}/revoke/")
    entries = list(LogEntry.objects.filter(object_id=str(key.pk)).order_by("action_time", "id"))
    assert [(e.user, e.action_flag) for e in entries] == [(alice, ADDITION), (alice, CHANGE)]
    assert "Created by its owner" in entries[0].get_change_message()
    assert "Revoked by its owner" in entries[1].get_change_message()
    assert key.prefix in entries[0].get_change_message()
