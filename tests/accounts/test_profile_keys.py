"""The profile's API keys: create (shown once), list, revoke with confirmation, and nobody else's keys."""

from __future__ import annotations

import tomllib
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts import keys, services
from accounts.models import ApiKey, User
from catalogue.models import Provider
from tests.accounts.helpers import SECRET_RE, make_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client: Client, alice: User) -> Client:
    client.force_login(alice)
    return client


def create(client: Client, **data: object):  # type: ignore[no-untyped-def]
    return client.post("/accounts/profile/", {"name": "laptop", **data})


def test_it_requires_login(client: Client) -> None:
    response = client.get("/accounts/profile/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_shows_a_new_keys_secret_once_and_the_key_authenticates(alice_client: Client, alice: User) -> None:
    response = create(alice_client)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    match = SECRET_RE.search(response.content.decode())
    assert match, "the new key is on the page"
    secret = match.group(1)
    key = keys.find_key(secret)
    assert key is not None and key.user == alice and key.name == "laptop"
    assert key.allowed_models == [] and key.expires_at is None

    again = alice_client.get("/accounts/profile/")
    assert secret not in again.content.decode()
    assert key.display in again.content.decode()
    assert secret not in str(dict(alice_client.session))


def test_it_shows_the_new_key_in_snippets_with_the_real_base_url(alice_client: Client) -> None:
    make_model("acme/chat-1")
    response = create(alice_client)
    page = response.content.decode()
    secret = SECRET_RE.search(page).group(1)  # type: ignore[union-attr]
    for marker in (
        "curl http://testserver/v1/chat/completions",
        "from openai import OpenAI",
        'import OpenAI from "openai"',
        "ChatOpenAI(",
        "provider: openai",
        "client.responses.create(",
        "curl http://testserver/v1/responses",
        'wire_api = "responses"',
    ):
        assert marker in page.replace("&quot;", '"')
    assert page.count(secret) >= 8
    assert "acme/chat-1" in page


def test_it_writes_the_codex_snippet_as_a_config_toml_for_the_responses_api() -> None:
    codex = tomllib.loads(services.snippets("http://host:8000/v1", "acme/chat-1", "sk-x")["codex"])
    assert codex["model"] == "acme/chat-1" and codex["model_provider"] == "chatsite"
    provider = codex["model_providers"]["chatsite"]
    assert provider["base_url"] == "http://host:8000/v1" and provider["wire_api"] == "responses"


def test_it_writes_snippets_for_the_host_the_browser_used_and_the_chosen_model(client: Client, alice: User) -> None:
    make_model("acme/chat-1")
    make_model("acme/chat-2")
    client.force_login(alice)
    page = client.get("/accounts/profile/?model=acme/chat-2", HTTP_HOST="localhost:8123").content.decode()
    assert "http://localhost:8123/v1" in page
    assert "model=&quot;acme/chat-2&quot;" in page
    assert "sk-...your-key..." in page


def test_it_never_offers_snippets_for_a_model_whose_provider_is_disabled(client: Client, alice: User) -> None:
    make_model("acme/chat-1")
    off = Provider.objects.create(name="off", base_url="http://127.0.0.1:9/v1", enabled=False)
    make_model("aaa/unreachable", provider=off)
    client.force_login(alice)
    page = client.get("/accounts/profile/?model=aaa/unreachable").content.decode()
    assert '<option value="aaa/unreachable"' not in page
    assert "model=&quot;acme/chat-1&quot;" in page


def test_it_lets_a_key_expire_and_be_limited_to_some_models(alice_client: Client) -> None:
    make_model("acme/chat-1")
    make_model("acme/chat-2")
    day = timezone.localdate() + timedelta(days=10)
    response = create(alice_client, expires_on=day.isoformat(), allowed_models=["acme/chat-2"])
    secret = SECRET_RE.search(response.content.decode()).group(1)  # type: ignore[union-attr]
    key = keys.find_key(secret)
    assert key is not None
    assert key.allowed_models == ["acme/chat-2"]
    assert key.expires_at is not None and timezone.localdate(key.expires_at) == day


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "  "}, "This field is required."),
        ({"name": ""}, "This field is required."),
        ({"expires_on": "2001-01-01"}, "Choose a day after today."),
        ({"expires_on": "not a day"}, "Enter a valid date."),
        ({"allowed_models": ["no/such-model"]}, "Select a valid choice."),
    ],
)
def test_it_answers_a_bad_key_request_with_a_readable_form_error_and_no_key(
    alice_client: Client, data: dict[str, object], message: str
) -> None:
    response = alice_client.post("/accounts/profile/", {"name": "laptop", **data})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not SECRET_RE.search(response.content.decode())
    assert ApiKey.objects.count() == 0


def test_it_lists_each_keys_name_prefix_last4_dates_and_status(alice_client: Client, alice: User) -> None:
    live, _ = keys.create_key(alice, "live")
    gone, _ = keys.create_key(alice, "gone")
    keys.revoke(gone)
    old, _ = keys.create_key(alice, "old", expires_at=timezone.now() - timedelta(minutes=1))
    page = alice_client.get("/accounts/profile/").content.decode()
    for key in (live, gone, old):
        assert f"sk-{key.prefix}…{key.last4}" in page
    assert ">active<" in page and ">revoked<" in page and ">expired<" in page
    assert live.key_hash not in page


def test_it_asks_for_confirmation_before_revoking(alice_client: Client, alice: User) -> None:
    key, _ = keys.create_key(alice, "laptop")
    confirm = alice_client.get(f"/accounts/profile/keys/{key.pk}/revoke/")
    assert confirm.status_code == 200
    assert "Revoke “laptop”?" in confirm.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None


def test_it_revokes_a_key_at_once(alice_client: Client, alice: User) -> None:
    key, secret = keys.create_key(alice, "laptop")
    response = alice_client.post(f"/accounts/profile/keys/{key.pk}/revoke/", follow=True)
    assert response.status_code == 200
    assert "is revoked" in response.content.decode()
    found = keys.find_key(secret)
    assert found is not None and found.revoked_at is not None and not found.is_active


def test_it_refuses_another_user_the_sight_and_revocation_of_my_keys(client: Client, alice: User, bob: User) -> None:
    key, _ = keys.create_key(alice, "alice-laptop")
    client.force_login(bob)
    page = client.get("/accounts/profile/").content.decode()
    assert "alice-laptop" not in page and key.prefix not in page
    assert client.get(f"/accounts/profile/keys/{key.pk}/revoke/").status_code == 404
    assert client.post(f"/accounts/profile/keys/{key.pk}/revoke/").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_it_requires_login_to_revoke(client: Client, alice: User) -> None:
    key, _ = keys.create_key(alice, "laptop")
    response = client.post(f"/accounts/profile/keys/{key.pk}/revoke/")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is None
