"""`manage.py groups`, `models restrict` and `limits set --group`: idempotent, a one-line reason on bad input."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from accounts.models import User
from tests.accounts.helpers import make_model
from usage.models import Limit

pytestmark = pytest.mark.django_db


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue().strip()


def test_groups_add_creates_a_group_once() -> None:
    assert run("groups", "add", "research") == "created group research"
    assert run("groups", "add", " research ") == "exists: group research"
    assert list(Group.objects.values_list("name", flat=True)) == ["research"]


def test_add_member_puts_a_user_in_a_group_once_and_can_make_it_their_default_and_them_a_manager(alice: User) -> None:
    run("groups", "add", "research")
    assert run("groups", "add-member", "research", "alice") == "added alice in research"
    assert run("groups", "add-member", "research", "alice", "--default", "--manager") == (
        "already a member: alice in research (default group, manager)"
    )
    alice.refresh_from_db()
    research = Group.objects.get(name="research")
    assert list(alice.groups.all()) == [research] and alice.default_group == research
    assert list(research.profile.managers.all()) == [alice]
    assert run("groups", "list") == "research\tmembers: alice\tmanagers: alice"
    assert run("groups", "remove-member", "research", "alice") == "removed alice from research"
    alice.refresh_from_db()
    assert not alice.groups.exists() and alice.default_group is None


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("add", "  "), "a group needs a name"),
        (("add", "x" * 151), "at most 150 characters"),
        (("add-member", "nope", "alice"), "no group named 'nope' (add it with: groups add)"),
        (("add-member", "research", "nobody"), "no user named 'nobody'"),
        (("remove-member", "research", "nobody"), "no user named 'nobody'"),
    ],
)
def test_groups_refuses_bad_input_with_a_one_line_reason(alice: User, args: tuple[str, ...], reason: str) -> None:
    Group.objects.create(name="research")
    with pytest.raises(CommandError) as refused:
        run("groups", *args)
    assert reason in str(refused.value) and "\n" not in str(refused.value)


def test_models_restrict_limits_a_model_to_groups_and_opens_it_again() -> None:
    model = make_model("acme/secret")
    for name in ("research", "sales"):
        Group.objects.create(name=name)
    assert run("models", "restrict", "acme/secret", "--groups", "sales, research,sales") == (
        "model acme/secret is restricted to research, sales"
    )
    assert sorted(model.groups.values_list("name", flat=True)) == ["research", "sales"]
    run("models", "restrict", "acme/secret", "--groups", "research")
    assert list(model.groups.values_list("name", flat=True)) == ["research"]
    assert run("models", "restrict", "acme/secret", "--everyone") == "model acme/secret is open to everyone"
    assert not model.groups.exists()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("acme/none", "--everyone"), "no model 'acme/none'"),
        (("acme/secret", "--groups", "research,nope"), "no group named 'nope'"),
        (("acme/secret", "--groups", " , "), "--groups needs at least one group name"),
    ],
)
def test_models_restrict_refuses_bad_input(args: tuple[str, ...], reason: str) -> None:
    make_model("acme/secret")
    Group.objects.create(name="research")
    with pytest.raises(CommandError) as refused:
        run("models", "restrict", *args)
    assert reason in str(refused.value)


def test_limits_set_group_sets_a_groups_shared_limits_once() -> None:
    research = Group.objects.create(name="research")
    args = ("set", "--group", "research", "--rpm", "60", "--budget", "100", "--period", "month")
    assert (
        run("limits", *args)
        == run("limits", *args)
        == ("limits of group research: rpm: 60, tpm: none, budget: $100.00 per month")
    )
    row = Limit.objects.get()
    assert (row.group, row.scope, row.requests_per_minute, row.budget_usd) == (research, "group", 60, Decimal(100))
    with pytest.raises(CommandError, match="no group named 'nope'"):
        run("limits", "set", "--group", "nope", "--rpm", "1")
