from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def signup(client: Client, username: str, password: str, password2: str | None = None):  # type: ignore[no-untyped-def]
    return client.post(
        "/accounts/signup/",
        {"username": username, "email": "", "password1": password, "password2": password2 or password},
    )


def test_the_signup_page_renders(client: Client) -> None:
    response = client.get("/accounts/signup/")
    assert response.status_code == 200
    assert b"Create your account" in response.content


def test_signing_up_logs_the_new_user_in_and_lands_on_the_chat_page(client: Client) -> None:
    response = signup(client, "carol", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert User.objects.filter(username="carol").exists()
    chat = client.get("/")
    assert chat.status_code == 200
    assert b"Signed in as" in chat.content and b"carol" in chat.content


def test_it_refuses_a_duplicate_username_with_a_form_error(client: Client, alice: User) -> None:
    response = signup(client, "alice", PASSWORD)
    assert response.status_code == 400
    assert b"A user with that username already exists." in response.content
    assert User.objects.filter(username="alice").count() == 1
    assert User.objects.get(username="alice").check_password(PASSWORD)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("12345678", b"This password is entirely numeric."),
        ("abc", b"This password is too short."),
        ("password", b"This password is too common."),
    ],
)
def test_it_refuses_a_weak_password_with_a_readable_error(client: Client, password: str, message: bytes) -> None:
    response = signup(client, "dave", password)
    assert response.status_code == 400
    assert message in response.content
    assert not User.objects.filter(username="dave").exists()


def test_it_refuses_mismatched_passwords(client: Client) -> None:
    response = signup(client, "erin", PASSWORD, PASSWORD + "x")
    assert response.status_code == 400
    assert b"You must type the same password each time." in response.content


def test_logging_in_with_the_right_password_lands_on_the_chat_page(client: Client, alice: User) -> None:
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_logging_in_with_a_wrong_password_shows_an_error(client: Client, alice: User) -> None:
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert "_auth_user_id" not in client.session


def test_logging_out_ends_the_session(client: Client, alice: User) -> None:
    client.force_login(alice)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_the_chat_page_redirects_anonymous_visitors_to_login(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_the_profile_page_requires_login(client: Client) -> None:
    assert client.get("/accounts/profile/")["Location"].startswith("/accounts/login/")


def test_the_admin_is_served_to_staff(client: Client, admin: User) -> None:
    client.force_login(admin)
    assert client.get("/admin/").status_code == 200
