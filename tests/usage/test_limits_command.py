"""`python manage.py limits set|show`: the admin's way to set limits from a shell."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.keys import create_key
from accounts.models import User
from usage import limits
from usage.models import Limit


def _run(*args: str) -> str:
    out = StringIO()
    call_command("limits", *args, stdout=out)
    return out.getvalue().strip()


def test_it_sets_a_users_limits_and_is_idempotent(alice: User) -> None:
    first = _run("set", "--user", "alice", "--rpm", "10", "--tpm", "5000", "--budget", "2.5", "--period", "day")
    second = _run("set", "--user", "alice", "--rpm", "10", "--tpm", "5000", "--budget", "2.5", "--period", "day")
    assert first == second == "limits of user alice: rpm: 10, tpm: 5000, budget: $2.50 per day"
    row = Limit.objects.get(user=alice)
    assert (row.requests_per_minute, row.tokens_per_minute, row.budget_usd, row.budget_period) == (
        10,
        5000,
        Decimal("2.5"),
        "day",
    )
    assert Limit.objects.count() == 1


def test_options_not_given_stay_as_they_were(alice: User) -> None:
    _run("set", "--user", "alice", "--rpm", "10", "--budget", "5")
    _run("set", "--user", "alice", "--tpm", "700")
    row = Limit.objects.get(user=alice)
    assert (row.requests_per_minute, row.tokens_per_minute, row.budget_usd, row.budget_period) == (
        10,
        700,
        Decimal("5"),
        "month",
    )


def test_it_sets_a_key_by_its_visible_prefix_and_the_default(alice: User) -> None:
    key, secret = create_key(alice, "ide")
    assert "rpm: 3" in _run("set", "--key", key.display.split("…")[0], "--rpm", "3")
    assert Limit.objects.get(api_key=key).requests_per_minute == 3
    assert _run("set", "--key", secret, "--rpm", "4").startswith(f"limits of key {key}")
    assert _run("set", "--default", "--rpm", "60") == "default limits: rpm: 60, tpm: none, budget: none"
    assert Limit.objects.get(scope="default").requests_per_minute == 60


def test_the_user_inherits_the_default_and_zero_lifts_it(alice: User, bob: User) -> None:
    _run("set", "--default", "--rpm", "60", "--budget", "1")
    _run("set", "--user", "alice", "--rpm", "0")
    assert _run("show", "--user", "alice") == "limits of user alice: rpm: no limit, tpm: default, budget: default"
    mine = limits.limits_for_sync(alice.pk, None).user
    bobs = limits.limits_for_sync(bob.pk, None).user
    assert (mine.rpm, mine.budget_usd) == (None, Decimal("1"))
    assert (bobs.rpm, bobs.budget_usd) == (60, Decimal("1"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "--user", "nobody", "--rpm", "1"), "no user named 'nobody'"),
        (("set", "--key", "sk-unknown1", "--rpm", "1"), "no such API key"),
        (("set", "--user", "alice"), "nothing to set"),
        (("set", "--user", "alice", "--rpm", "-1"), "expected 0 or more"),
        (("set", "--user", "alice", "--rpm", "many"), "expected a whole number"),
        (("set", "--user", "alice", "--budget", "ten"), "--budget must be an amount in USD"),
        (("set", "--user", "alice", "--budget", "-5"), "--budget must be 0 or more"),
        (("set", "--user", "alice", "--budget", "0.00001"), "at most 4 decimals"),
    ],
)
def test_bad_input_fails_with_a_one_line_reason(alice: User, args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError) as failed:
        _run(*args)
    assert message in str(failed.value)
    assert "\n" not in str(failed.value)
    assert not Limit.objects.exists()


def test_it_needs_exactly_one_of_user_key_or_default(alice: User) -> None:
    with pytest.raises(CommandError):
        _run("set", "--user", "alice", "--default", "--rpm", "1")
    with pytest.raises(CommandError):
        _run("set", "--rpm", "1")
