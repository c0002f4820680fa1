from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User

pytestmark = pytest.mark.django_db
PW = "a-long-and-unusual-password"


def run(*args: str) -> str:
    out = StringIO()
    call_command("users", *args, stdout=out)
    return out.getvalue()


def test_it_creates_a_user() -> None:
    assert run("add", "frank", "--password", PW).strip() == "created user frank"
    user = User.objects.get(username="frank")
    assert user.check_password(PW)
    assert not user.is_staff


def test_it_creates_an_admin() -> None:
    run("add", "grace", "--password", PW, "--admin")
    user = User.objects.get(username="grace")
    assert user.is_staff and user.is_superuser


def test_running_it_twice_updates_instead_of_failing() -> None:
    run("add", "heidi", "--password", PW)
    assert run("add", "heidi", "--password", PW + "2", "--admin").strip() == "updated admin heidi"
    assert User.objects.filter(username="heidi").count() == 1
    assert User.objects.get(username="heidi").check_password(PW + "2")


def test_it_refuses_a_weak_password_with_one_line() -> None:
    with pytest.raises(CommandError, match="password refused: This password is too short"):
        run("add", "ivan", "--password", "abc")
    assert not User.objects.filter(username="ivan").exists()


def test_it_refuses_an_invalid_username() -> None:
    with pytest.raises(CommandError, match="invalid username"):
        run("add", "no spaces!", "--password", PW)


def test_a_failed_update_keeps_the_old_password() -> None:
    run("add", "judy", "--password", PW)
    with pytest.raises(CommandError):
        run("add", "judy", "--password", "123")
    assert User.objects.get(username="judy").check_password(PW)
