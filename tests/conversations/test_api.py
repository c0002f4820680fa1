"""/api/conversations/: list with search and pages, create, read, change, delete, messages; owner only."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import LanguageModel, Provider
from conversations import branches
from conversations.models import Conversation, Message
from tests.inprocess import InProcessApp
from tests.signed_in import sign_in

API = "/api/conversations/"


@pytest.fixture
def model(transactional_db: None) -> LanguageModel:
    provider = Provider.objects.create(name="up", base_url="http://127.0.0.1:9/v1")
    return LanguageModel.objects.create(public_id="team/chat", provider=provider, upstream_model="m")


@pytest.fixture
def alices(alice: User, model: LanguageModel) -> Conversation:
    conversation = Conversation.objects.create(owner=alice, title="Trip to Lisbon", model=model)
    branches.append(conversation, role="user", content="Where do I eat pastéis de nata?")
    branches.append(conversation, role="assistant", content="In Belém.", model=model)
    return conversation


def error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def test_the_list_is_paginated_newest_activity_first(as_alice: httpx.Client, alice: User) -> None:
    for i in range(5):
        Conversation.objects.create(owner=alice, title=f"Chat {i}")
    answer = as_alice.get(API, params={"page_size": 2})
    assert answer.headers["Cache-Control"] == "no-store"
    first = answer.json()
    assert first["count"] == 5
    assert [c["title"] for c in first["results"]] == ["Chat 4", "Chat 3"]
    second = as_alice.get(first["next"]).json()
    assert [c["title"] for c in second["results"]] == ["Chat 2", "Chat 1"]
    assert as_alice.get(API, params={"page": 9}).status_code == 404


def test_a_conversation_has_links_to_itself_its_page_and_its_messages(
    as_alice: httpx.Client, alices: Conversation
) -> None:
    shown = as_alice.get(f"{API}{alices.pk}/").json()
    assert shown["url"] == f"/api/conversations/{alices.pk}/"
    assert shown["page_url"] == f"/c/{alices.pk}/"
    assert shown["messages_url"] == f"/api/conversations/{alices.pk}/messages/"
    assert (shown["title"], shown["model"]) == ("Trip to Lisbon", "team/chat")


def test_search_finds_conversations_by_title_and_by_content(
    as_alice: httpx.Client, alices: Conversation, alice: User
) -> None:
    Conversation.objects.create(owner=alice, title="Tax return")

    def titles(**params: str) -> list[str]:
        return [c["title"] for c in as_alice.get(API, params=params).json()["results"]]

    assert titles(q="lisbon") == ["Trip to Lisbon"]
    assert titles(q="NATA") == ["Trip to Lisbon"]
    assert set(titles()) == {"Trip to Lisbon", "Tax return"}


def test_a_search_with_a_nul_character_is_a_clear_400(as_alice: httpx.Client, alices: Conversation) -> None:
    response = as_alice.get(API, params={"q": "a\x00b"})
    assert response.status_code == 400
    assert error(response)["param"] == "q"


def test_the_messages_come_oldest_first_in_pages(as_alice: httpx.Client, alices: Conversation) -> None:
    data = as_alice.get(f"{API}{alices.pk}/messages/").json()
    assert data["count"] == 2
    assert [(m["role"], m["content"], m["status"]) for m in data["results"]] == [
        ("user", "Where do I eat pastéis de nata?", "complete"),
        ("assistant", "In Belém.", "complete"),
    ]
    assert data["results"][1]["model"] == "team/chat"


def test_creating_a_conversation_uses_the_chosen_model_and_system_prompt(
    as_alice: httpx.Client, model: LanguageModel
) -> None:
    response = as_alice.post(API, json={"model": "team/chat", "system_prompt": "Be brief.", "title": "Plans"})
    assert response.status_code == 201
    created = Conversation.objects.get(pk=response.json()["id"])
    assert (created.model, created.system_prompt, created.title) == (model, "Be brief.", "Plans")


def test_creating_with_an_unknown_model_is_a_readable_error(as_alice: httpx.Client, model: LanguageModel) -> None:
    response = as_alice.post(API, json={"model": "nope"})
    assert response.status_code == 400
    problem = error(response)
    assert "not available" in problem["message"]
    assert (problem["param"], problem["type"]) == ("model", "invalid_request_error")
    assert not Conversation.objects.exists()


def test_rename_switch_model_and_system_prompt(
    as_alice: httpx.Client, alices: Conversation, model: LanguageModel
) -> None:
    other = LanguageModel.objects.create(public_id="team/other", provider=model.provider, upstream_model="o")
    changes = {"title": "Lisbon, May", "model": "team/other", "system_prompt": "x"}
    response = as_alice.patch(f"{API}{alices.pk}/", json=changes)
    assert response.status_code == 200
    assert response.json()["title"] == "Lisbon, May"
    alices.refresh_from_db()
    assert (alices.title, alices.model, alices.system_prompt) == ("Lisbon, May", other, "x")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"title": "x" * 201}, "title"),
        ({"title": "a\x00b"}, "title"),
        ({"system_prompt": "\ud800"}, "system_prompt"),
        ({"title": 5, "model": []}, "model"),
    ],
)
def test_invalid_changes_are_400s_naming_the_field_and_change_nothing(
    as_alice: httpx.Client, alices: Conversation, body: dict[str, Any], param: str
) -> None:
    # json.dumps escapes a lone surrogate as JSON allows ("\\ud800"); httpx's json= cannot send one.
    content, headers = json.dumps(body), {"Content-Type": "application/json"}
    response = as_alice.patch(f"{API}{alices.pk}/", content=content, headers=headers)
    assert response.status_code == 400
    assert error(response)["param"] == param
    alices.refresh_from_db()
    assert alices.title == "Trip to Lisbon"


def test_a_body_nested_too_deeply_or_not_json_is_a_400(as_alice: httpx.Client, alices: Conversation) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    for body in (deep, "{", '{"title": NaN}'):
        response = as_alice.patch(f"{API}{alices.pk}/", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, body[:20]
        assert error(response)["code"] == "parse_error"


def test_delete_removes_the_conversation_and_its_messages(as_alice: httpx.Client, alices: Conversation) -> None:
    assert as_alice.delete(f"{API}{alices.pk}/").status_code == 204
    assert not Conversation.objects.filter(pk=alices.pk).exists()
    assert not Message.objects.exists()


def test_another_users_conversation_is_not_found_on_every_endpoint(as_bob: httpx.Client, alices: Conversation) -> None:
    url = f"{API}{alices.pk}/"
    for response in (
        as_bob.get(url),
        as_bob.get(url + "messages/"),
        as_bob.patch(url, json={"title": "mine now"}),
        as_bob.delete(url),
    ):
        assert response.status_code == 404
        assert error(response) == {
            "message": "Not found.",
            "type": "not_found_error",
            "param": None,
            "code": "not_found",
        }
    assert as_bob.get(API).json()["results"] == []
    assert as_bob.get(API, params={"q": "lisbon"}).json()["count"] == 0
    alices.refresh_from_db()
    assert alices.title == "Trip to Lisbon"


def test_anonymous_callers_get_401(app: InProcessApp, alices: Conversation) -> None:
    client = app.client()
    for response in (client.get(API), client.delete(f"{API}{alices.pk}/")):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert error(response)["type"] == "authentication_error"
    assert Conversation.objects.filter(pk=alices.pk).exists()


def test_a_browser_session_needs_the_csrf_token_to_change_anything(
    app: InProcessApp, alice: User, alices: Conversation
) -> None:
    client = sign_in(app.client(), alice, csrf=False)
    response = client.delete(f"{API}{alices.pk}/")
    assert response.status_code == 403
    assert "CSRF" in error(response)["message"]
    assert Conversation.objects.filter(pk=alices.pk).exists()
    assert client.get(API).status_code == 200  # reading needs no token


def test_a_script_reads_and_changes_my_conversations_with_an_api_key(
    app: InProcessApp, alice: User, bob: User, alices: Conversation
) -> None:
    _, secret = create_key(alice, "script")
    script = app.client(headers={"Authorization": f"Bearer {secret}"})
    listed = script.get(API).json()
    assert [c["id"] for c in listed["results"]] == [alices.pk]
    messages = script.get(listed["results"][0]["messages_url"]).json()
    assert messages["count"] == 2
    assert script.patch(f"{API}{alices.pk}/", json={"title": "From a script"}).status_code == 200  # no CSRF for keys
    _, bobs_secret = create_key(bob, "bob's")
    bobs = app.client(headers={"Authorization": f"Bearer {bobs_secret}"})
    assert bobs.get(f"{API}{alices.pk}/").status_code == 404
