"""/api/keys/: list, create (the secret in that answer only), revoke; nobody else's keys; and the REST
API's authentication by key: refused once revoked, expired or its user deactivated."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, User
from tests.accounts.helpers import make_model
from tests.inprocess import InProcessApp

API = "/api/keys/"


def with_key(app: InProcessApp, secret: str) -> httpx.Client:
    return app.client(headers={"Authorization": f"Bearer {secret}"})


def test_creating_a_key_answers_its_secret_once_and_the_secret_works(as_alice: httpx.Client, alice: User) -> None:
    make_model("acme/chat-1")
    future = (timezone.now() + timedelta(days=3)).isoformat()
    response = as_alice.post(API, json={"name": "laptop", "allowed_models": ["acme/chat-1"], "expires_at": future})
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    created = response.json()
    secret = created["key"]
    found = keys.find_key(secret)
    assert found is not None and found.user == alice and found.pk == created["id"]
    assert (created["name"], created["allowed_models"], created["status"]) == ("laptop", ["acme/chat-1"], "active")
    assert created["display"] == found.display

    listed = as_alice.get(API).json()["results"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert secret not in as_alice.get(API).text
    assert secret not in as_alice.get(f"{API}{created['id']}/").text
    assert "key" not in listed[0]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "name"),
        ({"name": "  "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ok", "allowed_models": ["no/such-model"]}, "allowed_models"),
        ({"name": "ok", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "ok", "expires_at": "soon"}, "expires_at"),
    ],
)
def test_an_invalid_key_request_is_a_400_naming_the_field(
    as_alice: httpx.Client, body: dict[str, object], param: str
) -> None:
    response = as_alice.post(API, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert not ApiKey.objects.exists()


def test_revoking_a_key_stops_it_at_once(app: InProcessApp, as_alice: httpx.Client, alice: User) -> None:
    key, secret = keys.create_key(alice, "script")
    script = with_key(app, secret)
    assert script.get(API).status_code == 200
    revoked = as_alice.post(f"{API}{key.pk}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    refused = script.get(API)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"


def test_an_expired_key_or_a_deactivated_users_key_is_refused(app: InProcessApp, alice: User) -> None:
    expired, expired_secret = keys.create_key(alice, "old")
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert with_key(app, expired_secret).get(API).status_code == 401
    _, secret = keys.create_key(alice, "fine")
    assert with_key(app, secret).get(API).status_code == 200
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert with_key(app, secret).get(API).status_code == 401


@pytest.mark.parametrize("header", ["Bearer sk-not-a-key", "Bearer", "Bearer a b", "Bearer ﬀ"])
def test_a_malformed_or_unknown_key_is_a_401(app: InProcessApp, header: str) -> None:
    response = app.client(headers={"Authorization": header.encode()}).get(API)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_a_key_can_list_keys_but_not_mint_or_revoke_them(app: InProcessApp, alice: User) -> None:
    key, secret = keys.create_key(alice, "scoped", allowed_models=["acme/chat-1"])
    script = with_key(app, secret)
    assert script.get(API).status_code == 200
    minted = script.post(API, json={"name": "everything, forever"})
    assert minted.status_code == 403
    assert minted.json()["error"]["type"] == "permission_error"
    assert script.post(f"{API}{key.pk}/revoke/").status_code == 403
    assert ApiKey.objects.filter(user=alice).count() == 1
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_using_a_key_records_when_it_was_last_used(app: InProcessApp, alice: User) -> None:
    key, secret = keys.create_key(alice, "script")
    with_key(app, secret).get(API)
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_another_users_keys_are_not_found(app: InProcessApp, as_alice: httpx.Client, bob: User) -> None:
    bobs, bobs_secret = keys.create_key(bob, "bob's")
    assert as_alice.get(API).json()["results"] == []
    for response in (as_alice.get(f"{API}{bobs.pk}/"), as_alice.post(f"{API}{bobs.pk}/revoke/")):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    bobs.refresh_from_db()
    assert bobs.revoked_at is None
    assert with_key(app, bobs_secret).get(API).status_code == 200
