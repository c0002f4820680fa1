"""Failed sign-ins lock the pair (account, address) and, at a higher bar, the account; never an address
alone, whose sign-ins are slowed down instead (an office behind one NAT shares one address). A lock
says so, expires by itself, shows in the admin and can be lifted with a command. Five failures of one
account pause its sign-ins (allauth); sign-up is rate limited per address.

Waits are read off the test's clock (`clock`), which a slowed sign-in moves forward instead of sleeping.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client, RequestFactory

from accounts.auth import client_ip
from accounts.models import User
from core.clock import ManualClock
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_counters(settings: object, clock: ManualClock) -> None:
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


def test_an_attackers_failures_with_made_up_names_never_lock_the_victim_out(
    alice: User, clock: ManualClock, settings: object
) -> None:
    """Tried as an attacker would: twice the lock's number of failures, from the victim's own address."""
    for n in range(2 * settings.AXES_FAILURE_LIMIT):  # type: ignore[attr-defined]
        assert b"Please enter a correct username" in attempt(f"nobody{n}", "wrong", ip="10.0.1.1").content
    before = clock.time()
    assert signed_in(attempt("alice", PASSWORD, ip="10.0.1.1"))
    assert clock.time() - before == settings.LOGIN_SLOWDOWN_MAX_SECONDS  # type: ignore[attr-defined]


def test_failures_from_an_address_slow_its_sign_ins_down_more_and_more_up_to_a_limit(
    alice: User, clock: ManualClock, settings: object
) -> None:
    settings.LOGIN_SLOWDOWN_AFTER, settings.LOGIN_SLOWDOWN_MAX_SECONDS = 3, 8  # type: ignore[attr-defined]
    waits = []
    for n in range(9):
        before = clock.time()
        attempt(f"nobody{n}", "wrong", ip="10.0.2.2")
        waits.append(clock.time() - before)
    assert waits == [0, 0, 0, 0, 1, 2, 4, 8, 8]
    before = clock.time()
    assert signed_in(attempt("alice", PASSWORD, ip="10.0.2.3"))  # another address waits for nothing
    assert clock.time() == before


def test_an_account_failing_from_many_addresses_locks_at_its_own_higher_bar_with_a_clear_message(
    only_axes: None, alice: User, bob: User, settings: object
) -> None:
    bar = settings.LOGIN_ACCOUNT_FAILURE_LIMIT  # type: ignore[attr-defined]
    assert bar > settings.AXES_FAILURE_LIMIT  # type: ignore[attr-defined]
    for n in range(bar - 1):
        assert attempt("alice", "wrong", ip=f"10.0.3.{n}").status_code == 200, n  # a form error, no lock
    attempt("alice", "wrong", ip="10.0.4.1")
    locked = attempt("alice", PASSWORD, ip="10.0.4.2")
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed sign-ins" in text and "the pause ends by itself" in text
    assert PASSWORD not in text
    assert signed_in(attempt("bob", PASSWORD, ip="10.0.4.2"))  # other accounts are not affected


def test_failures_of_an_account_from_one_address_lock_that_pair_only(
    only_axes: None, alice: User, bob: User, settings: object
) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):  # type: ignore[attr-defined]
        attempt("alice", "wrong", ip="10.0.5.5")
    assert attempt("alice", PASSWORD, ip="10.0.5.5").status_code == 429
    assert signed_in(attempt("bob", PASSWORD, ip="10.0.5.5"))  # the address is not locked
    assert signed_in(attempt("alice", PASSWORD, ip="10.0.5.6"))  # nor the account elsewhere


def test_the_lock_expires_and_failures_during_it_do_not_extend_it(
    only_axes: None, alice: User, settings: object
) -> None:
    for _ in range(10):
        attempt("alice", "wrong", ip="10.0.4.1")
    locked_at = {a.pk: a.attempt_time for a in AccessAttempt.objects.all()}
    for _ in range(5):
        assert attempt("alice", "wrong", ip="10.0.4.1").status_code == 429
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


def test_the_address_is_the_one_our_outermost_proxy_saw(settings: object) -> None:
    forwarded = {"REMOTE_ADDR": "10.9.9.9", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.5, 10.0.0.2"}
    settings.PROXY_HOPS = 0  # type: ignore[attr-defined]
    assert client_ip(RequestFactory().post("/", **forwarded)) == "10.9.9.9"  # type: ignore[arg-type]
    settings.PROXY_HOPS = 1  # type: ignore[attr-defined]
    assert client_ip(RequestFactory().post("/", **forwarded)) == "10.0.0.2"  # type: ignore[arg-type]
    settings.PROXY_HOPS = 2  # type: ignore[attr-defined]
    assert client_ip(RequestFactory().post("/", **forwarded)) == "203.0.113.5"  # type: ignore[arg-type]
    # Fewer entries than proxies: someone reached the server around them; only the peer is known.
    alone = {"REMOTE_ADDR": "10.9.9.9", "HTTP_X_FORWARDED_FOR": "6.6.6.6"}
    assert client_ip(RequestFactory().post("/", **alone)) == "10.9.9.9"  # type: ignore[arg-type]
