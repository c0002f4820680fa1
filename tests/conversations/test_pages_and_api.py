"""The chat page and its JSON endpoints: list, search, rename, delete, models; other users get 404."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from conversations.models import Conversation, Message
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

API = "/chat/api/conversations/"


@pytest.fixture
def model(db: None) -> LanguageModel:
    provider = Provider.objects.create(name="up", base_url="http://127.0.0.1:9/v1")
    return LanguageModel.objects.create(public_id="team/chat", provider=provider, upstream_model="m")


@pytest.fixture
def as_alice(client: Client, alice: User) -> Client:
    client.force_login(alice)
    return client


@pytest.fixture
def as_bob(bob: User) -> Client:
    client = Client()
    client.force_login(bob)
    return client


@pytest.fixture
def alices(alice: User, model: LanguageModel) -> Conversation:
    conversation = Conversation.objects.create(owner=alice, title="Trip to Lisbon", model=model)
    Message.objects.create(conversation=conversation, role="user", content="Where do I eat pastéis de nata?")
    return conversation


def patch(client: Client, url: str, data: dict[str, object]):  # type: ignore[no-untyped-def]
    return client.patch(url, json.dumps(data), content_type="application/json")


def test_the_chat_page_requires_login(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_page_lists_my_conversations_and_the_enabled_chat_models(
    as_alice: Client, alices: Conversation, model: LanguageModel
) -> None:
    LanguageModel.objects.create(public_id="off", provider=model.provider, upstream_model="x", enabled=False)
    LanguageModel.objects.create(public_id="embed", provider=model.provider, upstream_model="y", is_chat=False)
    page = as_alice.get("/").content.decode()
    assert 'aria-label="Conversations"' in page
    assert "Trip to Lisbon" in page
    assert '<option value="team/chat"' in page
    assert 'value="off"' not in page and 'value="embed"' not in page
    assert "No model is configured" not in page


def test_with_no_model_the_page_says_so_and_where_an_admin_adds_one(as_alice: Client) -> None:
    page = as_alice.get("/").content.decode()
    assert "No model is configured yet." in page
    assert 'href="/admin/"' in page


def test_a_conversation_page_shows_its_messages(as_alice: Client, alices: Conversation) -> None:
    response = as_alice.get(f"/c/{alices.pk}/")
    assert response.status_code == 200
    shown = response.context["initial"]["messages"]
    assert [(m["role"], m["content"]) for m in shown] == [("user", "Where do I eat pastéis de nata?")]


def test_another_users_conversation_page_is_not_found(as_bob: Client, alices: Conversation) -> None:
    assert as_bob.get(f"/c/{alices.pk}/").status_code == 404


def test_search_finds_conversations_by_title_and_by_content(
    as_alice: Client, alices: Conversation, alice: User
) -> None:
    Conversation.objects.create(owner=alice, title="Tax return")
    by_title = as_alice.get(API, {"q": "lisbon"}).json()["conversations"]
    by_content = as_alice.get(API, {"q": "NATA"}).json()["conversations"]
    everything = as_alice.get(API).json()["conversations"]
    assert [c["title"] for c in by_title] == ["Trip to Lisbon"]
    assert [c["title"] for c in by_content] == ["Trip to Lisbon"]
    assert {c["title"] for c in everything} == {"Trip to Lisbon", "Tax return"}
    page = as_alice.get("/", {"q": "nata"}).content.decode()
    assert "Trip to Lisbon" in page and "Tax return" not in page


def test_search_never_shows_another_users_conversations(as_bob: Client, alices: Conversation) -> None:
    assert as_bob.get(API, {"q": "lisbon"}).json()["conversations"] == []
    assert "Trip to Lisbon" not in as_bob.get("/", {"q": "lisbon"}).content.decode()


def test_creating_a_conversation_uses_the_chosen_model_and_system_prompt(
    as_alice: Client, model: LanguageModel
) -> None:
    response = as_alice.post(API, {"model": "team/chat", "system_prompt": "Be brief."}, content_type="application/json")
    assert response.status_code == 201
    created = Conversation.objects.get(pk=response.json()["id"])
    assert (created.model, created.system_prompt) == (model, "Be brief.")


def test_creating_with_an_unknown_model_is_a_readable_error(as_alice: Client, model: LanguageModel) -> None:
    response = as_alice.post(API, {"model": "nope"}, content_type="application/json")
    assert response.status_code == 400
    assert "not available" in response.json()["error"]["message"]
    assert not Conversation.objects.exists()


def test_rename_switch_model_and_system_prompt(as_alice: Client, alices: Conversation, model: LanguageModel) -> None:
    other = LanguageModel.objects.create(public_id="team/other", provider=model.provider, upstream_model="o")
    changes = {"title": "Lisbon, May", "model": "team/other", "system_prompt": "x"}
    response = patch(as_alice, f"{API}{alices.pk}/", changes)
    assert response.status_code == 200
    alices.refresh_from_db()
    assert (alices.title, alices.model, alices.system_prompt) == ("Lisbon, May", other, "x")


def test_another_user_cannot_rename_read_or_delete_my_conversation(as_bob: Client, alices: Conversation) -> None:
    url = f"{API}{alices.pk}/"
    assert as_bob.get(url).status_code == 404
    assert patch(as_bob, url, {"title": "mine now"}).status_code == 404
    assert as_bob.delete(url).status_code == 404
    alices.refresh_from_db()
    assert alices.title == "Trip to Lisbon"


def test_delete_removes_the_conversation_and_its_messages(as_alice: Client, alices: Conversation) -> None:
    assert as_alice.delete(f"{API}{alices.pk}/").status_code == 204
    assert not Conversation.objects.filter(pk=alices.pk).exists()
    assert not Message.objects.exists()


def test_the_api_refuses_anonymous_callers(client: Client, alices: Conversation) -> None:
    assert client.get(API).status_code == 403
    assert client.delete(f"{API}{alices.pk}/").status_code == 403


def test_the_api_needs_the_csrf_token_from_a_browser_session(alice: User, alices: Conversation) -> None:
    client = Client(enforce_csrf_checks=True)
    client.login(username="alice", password=PASSWORD)
    assert client.delete(f"{API}{alices.pk}/").status_code == 403
    assert Conversation.objects.filter(pk=alices.pk).exists()
