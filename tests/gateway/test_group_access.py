"""A model restricted to groups: invisible to everyone else, and refused on every /v1 route exactly as a
model that does not exist (so its name does not leak); members use it; a key only narrows its user's rights."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group

from accounts import groups
from accounts.keys import create_key
from accounts.models import User
from catalogue.models import LanguageModel
from gateway.lookups import lookups
from tests.fake_upstream import FakeUpstream
from tests.gateway.conftest import MODEL, Gateway
from tests.gateway.test_rights_cache import _eventually, _listening

SECRET_MODEL = "acme/secret-large"
MISSING_MODEL = "acme/no-such-model"


@pytest.fixture
def restricted(gateway: Gateway) -> Gateway:
    """SECRET_MODEL open to the group "research" only, which alice (the gateway's user) is in."""
    research, _ = groups.add_group("research")
    secret = LanguageModel.objects.create(
        public_id=SECRET_MODEL, provider=gateway.provider, upstream_model="fake-large", max_output_tokens=100
    )
    secret.groups.set([research])
    groups.add_member(research, gateway.user)
    return gateway


@pytest.fixture
def outsider(restricted: Gateway) -> str:
    """bob's key: bob is in another group, not in "research"."""
    bob = User.objects.create_user("bob", "bob@example.com", "correct-horse-battery-staple")
    groups.add_member(groups.add_group("sales")[0], bob)
    return create_key(bob, "bob's")[1]


def _chat(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}


# (method, path, body for a model id, headers beyond the key) of every /v1 route that names a model.
ROUTES: dict[str, Any] = {
    "chat completions": ("POST", "/v1/chat/completions", _chat),
    "streamed chat completions": ("POST", "/v1/chat/completions", lambda m: {**_chat(m), "stream": True}),
    "completions": ("POST", "/v1/completions", lambda m: {"model": m, "prompt": "hi", "max_tokens": 10}),
    "embeddings": ("POST", "/v1/embeddings", lambda m: {"model": m, "input": "hi"}),
    "responses": ("POST", "/v1/responses", lambda m: {"model": m, "input": "hi"}),
    "streamed responses": ("POST", "/v1/responses", lambda m: {"model": m, "input": "hi", "stream": True}),
    "messages": ("POST", "/v1/messages", _chat),
    "streamed messages": ("POST", "/v1/messages", lambda m: {**_chat(m), "stream": True}),
    "count_tokens": ("POST", "/v1/messages/count_tokens", lambda m: {"model": m, "messages": _chat(m)["messages"]}),
    "models/{id}": ("GET", "/v1/models/{model}", None),
}


def _call(gateway: Gateway, secret: str, route: str, model: str) -> tuple[int, Any]:
    method, path, body = ROUTES[route]
    headers = {**gateway.headers(secret), "anthropic-version": "2023-06-01"}
    if body is None:
        response = gateway.http.request(method, path.format(model=model.replace("/", "%2F")), headers=headers)
    else:
        response = gateway.http.request(method, path, json=body(model), headers=headers)
    return response.status_code, response.json()


@pytest.mark.parametrize("route", list(ROUTES))
def test_an_outsider_is_refused_a_restricted_model_exactly_as_a_missing_one(
    restricted: Gateway, outsider: str, fake_upstream: FakeUpstream, route: str
) -> None:
    status, answer = _call(restricted, outsider, route, SECRET_MODEL)
    missing_status, missing = _call(restricted, outsider, route, MISSING_MODEL)
    assert missing_status == 404
    assert (status, answer) == (404, json.loads(json.dumps(missing).replace(MISSING_MODEL, SECRET_MODEL)))
    assert fake_upstream.requests == []


def test_the_refusal_is_openais_model_not_found_and_anthropics_not_found_error(
    restricted: Gateway, outsider: str
) -> None:
    status, answer = _call(restricted, outsider, "chat completions", SECRET_MODEL)
    assert status == 404 and answer["error"]["code"] == "model_not_found"
    status, answer = _call(restricted, outsider, "messages", SECRET_MODEL)
    assert status == 404 and answer["type"] == "error" and answer["error"]["type"] == "not_found_error"


def test_an_outsider_does_not_see_a_restricted_model_and_a_member_does(restricted: Gateway, outsider: str) -> None:
    def listed(secret: str) -> list[str]:
        response = restricted.http.get("/v1/models", headers=restricted.headers(secret))
        return [model["id"] for model in response.json()["data"]]

    assert listed(outsider) == [MODEL]
    assert listed(restricted.secret) == [MODEL, SECRET_MODEL]


def test_a_member_uses_a_model_restricted_to_their_group(restricted: Gateway) -> None:
    status, answer = _call(restricted, restricted.secret, "chat completions", SECRET_MODEL)
    assert status == 200, answer
    assert answer["model"] == SECRET_MODEL


def test_a_key_scoped_to_a_restricted_model_does_not_open_it(restricted: Gateway, outsider: str) -> None:
    bob = User.objects.get(username="bob")
    _, scoped = create_key(bob, "scoped", allowed_models=[SECRET_MODEL, MODEL])
    assert _call(restricted, scoped, "chat completions", SECRET_MODEL)[0] == 404
    assert _call(restricted, scoped, "chat completions", MODEL)[0] == 200
    # A member's key scoped to others is narrower than its user: 403 as for any model outside its scope.
    _, narrow = create_key(restricted.user, "narrow", allowed_models=[MODEL])
    assert _call(restricted, narrow, "chat completions", SECRET_MODEL)[0] == 403


def test_a_groups_key_uses_the_models_restricted_to_its_group_and_no_other(restricted: Gateway) -> None:
    research = Group.objects.get(name="research")
    _, team_secret = groups.issue_group_key(research, "ci")
    _, sales_secret = groups.issue_group_key(groups.add_group("sales")[0], "ci")
    assert _call(restricted, team_secret, "chat completions", SECRET_MODEL)[0] == 200
    assert _call(restricted, sales_secret, "chat completions", SECRET_MODEL)[0] == 404
    assert _call(restricted, sales_secret, "chat completions", MODEL)[0] == 200


def test_memberships_and_restrictions_changed_behind_the_caches_back_apply(restricted: Gateway, outsider: str) -> None:
    _eventually(_listening, "the listener listens")
    member = restricted.user
    through = User.groups.through
    _eventually(lambda: _call(restricted, restricted.secret, "models/{id}", SECRET_MODEL)[0] == 200, "member sees it")
    # Written without the ORM's signals, as a SQL console would: only the database's triggers tell.
    through.objects.filter(user_id=member.pk).delete()
    _eventually(lambda: _call(restricted, restricted.secret, "models/{id}", SECRET_MODEL)[0] == 404, "left the group")
    through.objects.bulk_create([through(user_id=member.pk, group_id=Group.objects.get(name="research").pk)])
    _eventually(lambda: _call(restricted, restricted.secret, "models/{id}", SECRET_MODEL)[0] == 200, "back in it")
    access = LanguageModel.groups.through
    access.objects.filter(languagemodel__public_id=SECRET_MODEL).delete()
    _eventually(lambda: _call(restricted, outsider, "models/{id}", SECRET_MODEL)[0] == 200, "open to everyone")
    assert lookups.trusted()


def test_a_members_requests_read_no_rights_from_the_database_once_cached(
    restricted: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db.backends import utils

    reads: list[str] = []
    execute = utils.CursorWrapper.execute

    def counting(self: Any, sql: str, params: Any = None) -> Any:
        if sql.lstrip().upper().startswith("SELECT"):
            reads.append(sql)
        return execute(self, sql, params)

    _eventually(_listening, "the listener listens")
    _eventually(
        lambda: (
            _call(restricted, restricted.secret, "chat completions", SECRET_MODEL)[0] == 200
            and _call(restricted, restricted.secret, "models/{id}", SECRET_MODEL)[0] == 200
        ),
        "the rights are cached",
    )
    monkeypatch.setattr(utils.CursorWrapper, "execute", counting)
    for _ in range(5):
        assert _call(restricted, restricted.secret, "chat completions", SECRET_MODEL)[0] == 200
    assert reads == []
