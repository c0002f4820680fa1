"""Two-factor authentication with an authenticator app (TOTP, real codes computed by pyotp) and
recovery codes; optional per user, required of staff with STAFF_2FA_REQUIRED."""

from __future__ import annotations

import re

import pyotp
import pytest
from django.core.cache import cache
from django.test import Client

from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()  # used codes and rate limits live there


def sign_in(client: Client, username: str, next_url: str = "") -> str:
    """Password step; the answer's redirect target."""
    url = "/accounts/login/" + (f"?next={next_url}" if next_url else "")
    response = client.post(url, {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:2000]
    return str(response["Location"])


def activate_totp(client: Client) -> pyotp.TOTP:
    page = client.get("/accounts/2fa/totp/activate/")
    if page.status_code == 302 and page["Location"].startswith("/accounts/reauthenticate/"):
        # Turning on two-factor asks for the password again, however recent the sign-in.
        client.post(page["Location"], {"password": PASSWORD})
        page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200, page
    secret = re.search(r'id="authenticator_secret"[^>]*value="([A-Z2-7]+)"', page.content.decode())
    secret = secret or re.search(r'value="([A-Z2-7]{16,})"[^>]*id="authenticator_secret"', page.content.decode())
    assert secret, page.content.decode()
    totp = pyotp.TOTP(secret.group(1))
    wrong = client.post("/accounts/2fa/totp/activate/", {"code": "000000" if totp.now() != "000000" else "111111"})
    assert b"Incorrect code." in wrong.content
    done = client.post("/accounts/2fa/totp/activate/", {"code": totp.now()})
    assert done.status_code == 302
    return totp


def test_a_user_turns_on_totp_and_then_needs_a_code_to_sign_in(alice: User) -> None:
    client = Client()
    sign_in(client, "alice")
    totp = activate_totp(client)
    client.post("/accounts/logout/")

    visitor = Client()
    assert sign_in(visitor, "alice") == "/accounts/2fa/authenticate/"
    assert visitor.get("/").status_code == 302  # the password alone does not sign in
    wrong = visitor.post("/accounts/2fa/authenticate/", {"code": "123456" if totp.now() != "123456" else "654321"})
    assert b"Incorrect code." in wrong.content
    code = totp.now()
    assert visitor.post("/accounts/2fa/authenticate/", {"code": code})["Location"] == "/"
    assert visitor.get("/").status_code == 200

    # The same code a second time (someone watching over a shoulder) is refused.
    replay = Client()
    sign_in(replay, "alice")
    assert b"Incorrect code." in replay.post("/accounts/2fa/authenticate/", {"code": code}).content
    assert replay.get("/").status_code == 302


def test_a_recovery_code_signs_in_once_when_the_phone_is_lost(alice: User) -> None:
    client = Client()
    sign_in(client, "alice")
    activate_totp(client)
    page = client.get("/accounts/2fa/recovery-codes/").content.decode()
    shown = re.search(r'id="recovery_codes"\s*>([^<]+)</textarea>', page)
    assert shown, page
    codes = shown.group(1).split()
    assert len(codes) == 10
    code = codes[0]

    first = Client()
    sign_in(first, "alice")
    assert first.post("/accounts/2fa/authenticate/", {"code": code})["Location"] == "/"
    second = Client()
    sign_in(second, "alice")
    assert b"Incorrect code." in second.post("/accounts/2fa/authenticate/", {"code": code}).content


def test_users_without_totp_sign_in_with_the_password_alone(alice: User) -> None:
    assert sign_in(Client(), "alice") == "/"


def test_the_admin_signs_in_through_the_same_page_and_its_second_step(admin: User) -> None:
    client = Client()
    login = client.get("/admin/login/?next=/admin/")
    assert login.status_code == 302 and login["Location"] == "/accounts/login/?next=/admin/"
    sign_in(client, "admin")
    totp = activate_totp(client)
    client.post("/accounts/logout/")

    other = Client()
    assert sign_in(other, "admin", "/admin/") == "/accounts/2fa/authenticate/"
    assert other.get("/admin/").status_code == 302
    other.post("/accounts/2fa/authenticate/", {"code": totp.now()})
    assert other.get("/admin/").status_code == 200


def test_staff_must_set_up_totp_when_the_setting_says_so(settings: object, admin: User, alice: User) -> None:
    settings.STAFF_2FA_REQUIRED = True  # type: ignore[attr-defined]
    staff = Client()
    sign_in(staff, "admin")
    for path in ("/admin/", "/", "/accounts/profile/"):
        response = staff.get(path)
        assert response.status_code == 302 and response["Location"] == "/accounts/2fa/totp/activate/", path
    activate_totp(staff)
    assert staff.get("/admin/").status_code == 200

    member = Client()
    sign_in(member, "alice")
    assert member.get("/").status_code == 200  # not staff: optional
