"""Single sign-on with OpenID Connect against a real identity provider on loopback (tests/accounts/
oidc_idp.py): the first sign-in creates the account as the sign-up mode says, later ones find it;
configured in the admin (a social application) or from the environment's settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from allauth.socialaccount.models import SocialAccount, SocialApp
from django.core.cache import cache
from django.test import Client

from accounts.models import User
from tests.accounts.oidc_idp import IdentityProvider, local_path, running_identity_provider
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
CALLBACK = "http://testserver/accounts/oidc/acme-idp/login/callback/"


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    with running_identity_provider() as provider:
        yield provider


@pytest.fixture
def app(idp: IdentityProvider) -> SocialApp:
    """The provider as an admin adds it: Social applications, provider OpenID Connect."""
    cache.clear()
    client_id, secret = idp.register(CALLBACK)
    return SocialApp.objects.create(
        provider="openid_connect",
        provider_id="acme-idp",
        name="Acme SSO",
        client_id=client_id,
        secret=secret,
        settings={"server_url": idp.url},
    )


def sso(client: Client, idp: IdentityProvider, sub: str):  # type: ignore[no-untyped-def]
    """Press "Sign in with Acme SSO", sign in at the provider as `sub`, come back."""
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Acme SSO" in page
    start = client.post("/accounts/oidc/acme-idp/login/?process=login")
    assert start.status_code == 302, start.content.decode()[:2000]
    back = idp.authorize(start["Location"], sub)
    return client.get(local_path(back), follow=True)


def test_a_first_sign_in_creates_the_account_and_a_second_finds_it(app: SocialApp, idp: IdentityProvider) -> None:
    idp.set_user("u-carol", email="carol@example.com", preferred_username="carol", name="Carol Example")
    client = Client()
    page = sso(client, idp, "u-carol")
    assert page.redirect_chain[-1][0] == "/"
    carol = User.objects.get(username="carol")
    assert carol.email == "carol@example.com" and carol.is_active and not carol.has_usable_password()
    assert SocialAccount.objects.get(user=carol).uid == "u-carol"
    assert b"Signed in as" in client.get("/").content

    again = Client()
    sso(again, idp, "u-carol")
    assert again.get("/").status_code == 200
    assert User.objects.filter(email="carol@example.com").count() == 1


def test_a_forged_or_replayed_callback_signs_nobody_in(app: SocialApp, idp: IdentityProvider) -> None:
    idp.set_user("u-dave", email="dave@example.com", preferred_username="dave")
    victim = Client()
    start = victim.post("/accounts/oidc/acme-idp/login/?process=login")
    back = local_path(idp.authorize(start["Location"], "u-dave"))
    attacker = Client()  # another browser, without the state kept in the victim's session
    attacker.get(back, follow=True)
    assert attacker.get("/").status_code == 302
    assert not User.objects.filter(username="dave").exists()
    victim.get(back, follow=True)
    assert victim.get("/").status_code == 200
    replay = Client()
    replay.get(back, follow=True)
    assert replay.get("/").status_code == 302


def test_closed_sign_up_lets_existing_sso_users_in_and_no_one_new(
    app: SocialApp, idp: IdentityProvider, settings: object
) -> None:
    idp.set_user("u-erin", email="erin@example.com", preferred_username="erin")
    sso(Client(), idp, "u-erin")
    settings.SIGNUP = "closed"  # type: ignore[attr-defined]
    returning = Client()
    sso(returning, idp, "u-erin")
    assert returning.get("/").status_code == 200
    idp.set_user("u-frank", email="frank@example.com", preferred_username="frank")
    newcomer = Client()
    page = sso(newcomer, idp, "u-frank")
    assert b"does not take new sign-ups" in page.content
    assert not User.objects.filter(username="frank").exists()


def test_approval_sign_up_keeps_a_new_sso_user_waiting(app: SocialApp, idp: IdentityProvider, settings: object) -> None:
    settings.SIGNUP = "approval"  # type: ignore[attr-defined]
    idp.set_user("u-gina", email="gina@example.com", preferred_username="gina")
    client = Client()
    page = sso(client, idp, "u-gina")
    assert b"approves new accounts" in page.content
    assert not User.objects.get(username="gina").is_active
    assert client.get("/").status_code == 302


def test_invite_sign_up_lets_a_new_sso_user_in_with_a_link(
    app: SocialApp, idp: IdentityProvider, settings: object, alice: User
) -> None:
    settings.SIGNUP = "invite"  # type: ignore[attr-defined]
    idp.set_user("u-hal", email="hal@example.com", preferred_username="hal")
    uninvited = Client()
    assert b"by invitation only" in sso(uninvited, idp, "u-hal").content
    assert not User.objects.filter(username="hal").exists()

    inviter = Client()
    inviter.force_login(alice)
    from accounts import invites

    _, token = invites.create(alice)
    invited = Client()
    invited.get(f"/accounts/invite/{token}/")
    sso(invited, idp, "u-hal")
    assert invited.get("/").status_code == 200
    assert User.objects.get(username="hal").invited_by.created_by == alice  # type: ignore[attr-defined]


def test_with_local_login_off_only_single_sign_on_works(
    app: SocialApp, idp: IdentityProvider, settings: object, alice: User
) -> None:
    settings.LOCAL_LOGIN = False  # type: ignore[attr-defined]
    page = Client().get("/accounts/login/").content.decode()
    assert "Sign in with Acme SSO" in page and 'name="password"' not in page
    refused = Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 200 and b"Passwords are turned off" in refused.content
    idp.set_user("u-ivy", email="ivy@example.com", preferred_username="ivy")
    client = Client()
    sso(client, idp, "u-ivy")
    assert client.get("/").status_code == 200


def test_the_provider_can_come_from_the_settings(idp: IdentityProvider, settings: object) -> None:
    cache.clear()
    client_id, secret = idp.register(CALLBACK)
    settings.SOCIALACCOUNT_PROVIDERS = {  # type: ignore[attr-defined]
        "openid_connect": {
            "OAUTH_PKCE_ENABLED": True,
            "APPS": [
                {
                    "provider_id": "acme-idp",
                    "name": "Acme SSO",
                    "client_id": client_id,
                    "secret": secret,
                    "settings": {"server_url": idp.url},
                }
            ],
        }
    }
    idp.set_user("u-jo", email="jo@example.com", preferred_username="jo")
    client = Client()
    sso(client, idp, "u-jo")
    assert client.get("/").status_code == 200
