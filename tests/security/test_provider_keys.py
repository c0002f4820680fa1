"""A provider's key goes to its own base URL only, and only superusers decide what that is.

The attack: a staff user allowed to change providers pointed `api_key_env` at ADMIN_PASSWORD (or
SECRET_KEY, DATABASE_URL) and `base_url` at a listener of theirs, then ran "Check connection", which
sent the variable's value as the Bearer token; or changed only the base URL of a provider with a
stored key. The fake upstream is that listener: what it records is what went out.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import User
from catalogue.models import Provider
from tests.conftest import PASSWORD
from tests.fake_upstream import FakeUpstream

pytestmark = pytest.mark.django_db

STORED = "sk-stored-upstream-key-0123456789"
ADMIN_SECRET = "the-admin-password-nobody-may-read"


@pytest.fixture
def staff(db: None) -> User:
    """Staff with every permission on providers and models, but no superuser."""
    user = User.objects.create_user("stella", "stella@example.com", PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="catalogue"))
    return user


@pytest.fixture
def staff_client(client: Client, staff: User) -> Client:
    client.force_login(staff)
    return client


@pytest.fixture
def admin_client(client: Client, admin: User) -> Client:
    client.force_login(admin)
    return client


@pytest.fixture
def keyed(db: None) -> Provider:
    provider = Provider(name="acme", base_url="https://api.acme.test/v1")
    provider.set_api_key(STORED)
    provider.save()
    return provider


def form(provider: Provider, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": provider.name,
        "kind": provider.kind,
        "base_url": provider.base_url,
        "output_cap_param": provider.output_cap_param,
        "api_key": "",
        "api_key_env": provider.api_key_env,
        "connect_timeout": "5",
        "read_timeout": "120",
        "enabled": "on",
    }
    data.update(overrides)
    return data


def action(client: Client, name: str, *pks: int):  # type: ignore[no-untyped-def]
    return client.post(
        "/admin/catalogue/provider/", {"action": name, "_selected_action": [str(pk) for pk in pks]}, follow=True
    )


def bearer_tokens(upstream: FakeUpstream) -> list[str | None]:
    return [r.headers.get("authorization") for r in upstream.requests]


# --- staff without superuser rights --------------------------------------------------------------


def test_staff_may_look_at_providers_but_not_change_them(
    staff_client: Client, keyed: Provider, fake_upstream: FakeUpstream
) -> None:
    assert staff_client.get("/admin/catalogue/provider/").status_code == 200
    page = staff_client.get(f"/admin/catalogue/provider/{keyed.pk}/change/")
    assert page.status_code == 200 and b'name="base_url"' not in page.content  # read-only view
    response = staff_client.post(
        f"/admin/catalogue/provider/{keyed.pk}/change/", form(keyed, base_url=fake_upstream.base_url)
    )
    assert response.status_code == 403
    keyed.refresh_from_db()
    assert keyed.base_url == "https://api.acme.test/v1" and keyed.get_api_key() == STORED


def test_staff_cannot_add_a_provider(staff_client: Client, fake_upstream: FakeUpstream) -> None:
    provider = Provider(name="mine", base_url=fake_upstream.base_url, api_key_env="ADMIN_PASSWORD")
    response = staff_client.post("/admin/catalogue/provider/add/", form(provider))
    assert response.status_code == 403
    assert not Provider.objects.filter(name="mine").exists()


def test_staff_cannot_delete_a_provider(staff_client: Client, keyed: Provider) -> None:
    response = staff_client.post(f"/admin/catalogue/provider/{keyed.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Provider.objects.filter(pk=keyed.pk).exists()


@pytest.mark.parametrize("name", ["check_connection", "import_models"])
def test_staff_cannot_send_a_providers_key_anywhere(
    staff_client: Client, fake_upstream: FakeUpstream, name: str
) -> None:
    provider = Provider(name="fake", base_url=fake_upstream.base_url)
    provider.set_api_key(STORED)
    provider.save()
    response = action(staff_client, name, provider.pk)
    assert response.status_code == 200
    assert fake_upstream.requests == []


# --- what even a superuser cannot do ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["ADMIN_PASSWORD", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "HOME", "PATH"])
def test_a_key_cannot_come_from_the_servers_own_variables(admin_client: Client, keyed: Provider, name: str) -> None:
    response = admin_client.post(f"/admin/catalogue/provider/{keyed.pk}/change/", form(keyed, api_key_env=name))
    assert response.status_code == 200  # the form again, with its error
    page = response.content.decode()
    assert "cannot be used as a provider key" in page or "PROVIDER_KEY_ENV_ALLOWED" in page
    keyed.refresh_from_db()
    assert keyed.api_key_env == ""


def test_a_key_may_come_from_an_allowed_variable(
    admin_client: Client, fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_API_KEY", "sk-from-the-environment-123456")
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url)
    response = admin_client.post(
        f"/admin/catalogue/provider/{provider.pk}/change/", form(provider, api_key_env="ACME_API_KEY")
    )
    assert response.status_code == 302
    action(admin_client, "check_connection", provider.pk)
    assert bearer_tokens(fake_upstream) == ["Bearer sk-from-the-environment-123456"]


def test_the_allow_list_is_a_setting(admin_client: Client, keyed: Provider, settings: object) -> None:
    settings.PROVIDER_KEY_ENV_ALLOWED = ["VAULT_*"]  # type: ignore[attr-defined]
    ok = admin_client.post(f"/admin/catalogue/provider/{keyed.pk}/change/", form(keyed, api_key_env="VAULT_ACME"))
    assert ok.status_code == 302
    refused = admin_client.post(
        f"/admin/catalogue/provider/{keyed.pk}/change/", form(keyed, api_key_env="OPENAI_API_KEY")
    )
    assert b"VAULT_*" in refused.content


def test_a_forbidden_variable_stored_earlier_is_never_sent(
    admin_client: Client, fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_PASSWORD", ADMIN_SECRET)
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, api_key_env="ADMIN_PASSWORD")
    listing = admin_client.get("/admin/catalogue/provider/").content.decode()
    assert "ADMIN_PASSWORD is not allowed" in listing
    action(admin_client, "check_connection", provider.pk)
    assert fake_upstream.requests and bearer_tokens(fake_upstream) == [None]
    assert all(ADMIN_SECRET not in str(r.headers) for r in fake_upstream.requests)


def test_changing_the_base_url_drops_the_stored_key(
    admin_client: Client, keyed: Provider, fake_upstream: FakeUpstream
) -> None:
    response = admin_client.post(
        f"/admin/catalogue/provider/{keyed.pk}/change/", form(keyed, base_url=fake_upstream.base_url), follow=True
    )
    assert "its stored API key was removed: enter the key again" in response.content.decode()
    keyed.refresh_from_db()
    assert keyed.api_key_encrypted == "" and keyed.get_api_key() == ""
    action(admin_client, "check_connection", keyed.pk)
    assert fake_upstream.requests and bearer_tokens(fake_upstream) == [None]


def test_a_key_entered_with_the_new_base_url_is_kept(
    admin_client: Client, keyed: Provider, fake_upstream: FakeUpstream
) -> None:
    admin_client.post(
        f"/admin/catalogue/provider/{keyed.pk}/change/",
        form(keyed, base_url=fake_upstream.base_url, api_key="sk-the-new-key-for-the-new-url"),
    )
    keyed.refresh_from_db()
    assert keyed.get_api_key() == "sk-the-new-key-for-the-new-url"
    action(admin_client, "check_connection", keyed.pk)
    assert bearer_tokens(fake_upstream) == ["Bearer sk-the-new-key-for-the-new-url"]


def test_other_changes_keep_the_stored_key(admin_client: Client, keyed: Provider) -> None:
    admin_client.post(f"/admin/catalogue/provider/{keyed.pk}/change/", form(keyed, read_timeout="30"))
    keyed.refresh_from_db()
    assert keyed.get_api_key() == STORED and keyed.read_timeout == 30
