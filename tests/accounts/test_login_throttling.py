"""Failed sign-ins are slowed, then locked for a while (django-axes), per account and per address;
the lock says so, expires by itself, shows in the admin and can be lifted with a command. Sign-up and
sign-in are rate limited per address."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_counters(settings: object) -> None:
    cache.clear()  # allauth keeps its rate-limit windows in the cache


@pytest.fixture
def only_axes(settings: object) -> None:
    """Without allauth's slowing-down, to reach the lock in a few requests."""
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": None, "login": None}  # type: ignore[attr-defined]


def attempt(username: str, password: str, ip: str = "10.0.0.1"):  # type: ignore[no-untyped-def]
    return Client(REMOTE_ADDR=ip).post("/accounts/login/", {"username": username, "password": password})


def signed_in(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code == 302 and response["Location"] == "/"


def test_repeated_failures_for_an_account_are_slowed_down(alice: User) -> None:
    for _ in range(5):
        assert b"Please enter a correct username and password" in attempt("alice", "wrong").content
    slowed = attempt("alice", PASSWORD)  # even the right password waits now
    assert not signed_in(slowed)
    assert b"Too many failed sign-ins. Wait a few minutes" in slowed.content
    assert signed_in(attempt("bob-does-not-exist", "x")) is False


def test_ten_failures_lock_the_account_from_any_address_with_a_clear_message(
    only_axes: None, alice: User, bob: User
) -> None:
    for n in range(10):
        attempt("alice", "wrong", ip=f"10.0.1.{n}")
    locked = attempt("alice", PASSWORD, ip="10.0.2.1")
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed sign-ins" in text and "the pause ends by itself" in text
    assert PASSWORD not in text
    assert signed_in(attempt("bob", PASSWORD, ip="10.0.2.1"))  # other accounts are not affected


def test_ten_failures_from_one_address_lock_that_address(only_axes: None, alice: User) -> None:
    for n in range(10):
        attempt(f"nobody{n}", "wrong", ip="10.0.3.3")
    assert attempt("alice", PASSWORD, ip="10.0.3.3").status_code == 429
    assert signed_in(attempt("alice", PASSWORD, ip="10.0.3.4"))


def test_the_lock_expires_and_failures_during_it_do_not_extend_it(
    only_axes: None, alice: User, settings: object
) -> None:
    for _ in range(10):
        attempt("alice", "wrong", ip="10.0.4.1")
    locked_at = {a.pk: a.attempt_time for a in AccessAttempt.objects.all()}
    for _ in range(5):
        assert attempt("alice", "wrong", ip="10.0.4.2").status_code == 429
    assert {a.pk: a.attempt_time for a in AccessAttempt.objects.all() if a.pk in locked_at} == locked_at

    # The cool-off passes (the attempts' time moves back rather than the test waiting for it).
    cooloff = settings.AXES_COOLOFF_TIME  # type: ignore[attr-defined]
    AccessAttempt.objects.update(attempt_time=locked_at[next(iter(locked_at))] - cooloff - timedelta(seconds=1))
    assert signed_in(attempt("alice", PASSWORD, ip="10.0.4.1"))


def test_admins_see_lockouts_and_a_command_lifts_one(only_axes: None, alice: User, admin: User) -> None:
    for _ in range(10):
        attempt("alice", "wrong", ip="10.0.5.1")
    admin_client = Client()
    admin_client.force_login(admin)
    listing = admin_client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and b"alice" in listing.content
    assert b"wrong" not in listing.content  # passwords tried are never shown

    call_command("axes_reset_username", "alice")
    call_command("axes_reset_ip", "10.0.5.1")
    assert signed_in(attempt("alice", PASSWORD, ip="10.0.5.1"))


def test_sign_up_is_rate_limited_per_address(settings: object) -> None:
    settings.ACCOUNT_RATE_LIMITS = {"signup": "3/m/ip"}  # type: ignore[attr-defined]
    answers = []
    for n in range(4):
        form = {"username": f"u{n}", "email": "", "password1": PASSWORD, "password2": PASSWORD}
        answers.append(Client(REMOTE_ADDR="10.0.6.1").post("/accounts/signup/", form).status_code)
    assert answers == [302, 302, 302, 429]
    assert User.objects.count() == 3
    other = {"username": "elsewhere", "email": "", "password1": PASSWORD, "password2": PASSWORD}
    assert Client(REMOTE_ADDR="10.0.6.2").post("/accounts/signup/", other).status_code == 302


def test_sign_in_is_rate_limited_per_address(settings: object, alice: User) -> None:
    settings.ACCOUNT_RATE_LIMITS = {"login": "3/m/ip"}  # type: ignore[attr-defined]
    statuses = [attempt("alice", PASSWORD, ip="10.0.7.1").status_code for _ in range(4)]
    assert statuses == [302, 302, 302, 429]
    assert b"Too many requests" in attempt("alice", PASSWORD, ip="10.0.7.1").content
