"""Single sign-on puts a user in the groups the identity provider's groups claim names, at each sign-in,
against the real identity provider on loopback (tests/accounts/oidc_idp.py)."""

from __future__ import annotations

import pytest
from allauth.socialaccount.models import SocialApp
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.test import Client

from accounts import groups
from accounts.models import User
from tests.accounts.oidc_idp import IdentityProvider
from tests.accounts.test_single_sign_on import app, idp, sso  # noqa: F401

pytestmark = pytest.mark.django_db


def _groups_of(username: str) -> set[str]:
    return set(User.objects.get(username=username).groups.values_list("name", flat=True))


def test_each_sign_in_follows_the_groups_claim(app: SocialApp, idp: IdentityProvider) -> None:  # noqa: F811
    for name in ("research", "sales", "admins"):
        Group.objects.create(name=name)
    idp.set_user("u-erin", email="erin@example.com", preferred_username="erin", groups=["research", "sales", "ghosts"])
    sso(Client(), idp, "u-erin")
    # Existing groups only: a name no group has creates none.
    assert _groups_of("erin") == {"research", "sales"}
    assert not Group.objects.filter(name="ghosts").exists()

    # An admin puts erin in another group by hand; the provider stops naming "sales".
    groups.add_member(Group.objects.get(name="admins"), User.objects.get(username="erin"))
    idp.set_user("u-erin", email="erin@example.com", preferred_username="erin", groups=["research"])
    sso(Client(), idp, "u-erin")
    assert _groups_of("erin") == {"research", "admins"}  # what single sign-on gave it takes back, nothing else

    idp.set_user("u-erin", email="erin@example.com", preferred_username="erin")  # no claim: no groups from it
    sso(Client(), idp, "u-erin")
    assert _groups_of("erin") == {"admins"}
    changes = list(LogEntry.objects.order_by("pk").values_list("change_message", flat=True))
    assert changes == [
        "Added member erin (single sign-on).",
        "Added member erin (single sign-on).",
        "Removed member erin (single sign-on).",
        "Removed member erin (single sign-on).",
    ]


def test_the_claims_name_is_a_setting(app: SocialApp, idp: IdentityProvider, settings: object) -> None:  # noqa: F811
    settings.OIDC_GROUPS_CLAIM = "roles"  # type: ignore[attr-defined]
    Group.objects.create(name="research")
    idp.set_user("u-finn", email="finn@example.com", preferred_username="finn", groups=[], roles="research")
    sso(Client(), idp, "u-finn")
    assert _groups_of("finn") == {"research"}
