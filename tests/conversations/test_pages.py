"""The chat page: login, the conversation list with search, the models, a conversation's messages."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from accounts.models import User
from catalogue.cards import model_card
from catalogue.models import LanguageModel, Provider
from conversations import branches
from conversations.models import Conversation
from tests.inprocess import InProcessApp


@pytest.fixture
def model(transactional_db: None) -> LanguageModel:
    provider = Provider.objects.create(name="up", base_url="http://127.0.0.1:9/v1")
    return LanguageModel.objects.create(public_id="team/chat", provider=provider, upstream_model="m")


@pytest.fixture
def alices(alice: User, model: LanguageModel) -> Conversation:
    conversation = Conversation.objects.create(owner=alice, title="Trip to Lisbon", model=model)
    branches.append(conversation, role="user", content="Where do I eat pastéis de nata?")
    return conversation


def test_it_requires_login(app: InProcessApp) -> None:
    response = app.client().get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/")


def test_it_lists_my_conversations_and_the_enabled_chat_models(
    as_alice: httpx.Client, alices: Conversation, model: LanguageModel
) -> None:
    LanguageModel.objects.create(public_id="off", provider=model.provider, upstream_model="x", enabled=False)
    LanguageModel.objects.create(public_id="embed", provider=model.provider, upstream_model="y", kind="embedding")
    response = as_alice.get("/")
    page = response.text
    assert 'aria-label="Conversations"' in page
    assert "Trip to Lisbon" in page
    assert '<option value="team/chat"' in page
    assert 'value="off"' not in page and 'value="embed"' not in page
    assert "No model is configured" not in page
    assert "no-store" in response.headers["Cache-Control"]


def test_it_names_its_urls_and_runs_no_inline_script(as_alice: httpx.Client, alices: Conversation) -> None:
    page = as_alice.get(f"/c/{alices.pk}/").text
    assert 'data-conversations-url="/api/conversations/"' in page
    assert 'data-socket-path="/ws/conversations/{id}/"' in page
    assert '<script type="module" src="/static/js/chat/main.js">' in page
    scripts = page.split("<script")[1:]
    assert all(' src="' in tag.split(">")[0] or 'type="application/json"' in tag.split(">")[0] for tag in scripts)


def test_it_says_when_there_is_no_model_and_where_an_admin_adds_one(as_alice: httpx.Client) -> None:
    page = as_alice.get("/").text
    assert "No model is configured yet." in page
    assert 'href="/admin/"' in page


def _initial(response: httpx.Response) -> dict[str, Any]:
    block = re.search(r'<script id="chat-initial" type="application/json">(.*?)</script>', response.text, re.S)
    assert block
    return dict(json.loads(block.group(1)))


def test_it_shows_a_conversations_messages(as_alice: httpx.Client, alices: Conversation) -> None:
    response = as_alice.get(f"/c/{alices.pk}/")
    assert response.status_code == 200
    initial = _initial(response)
    assert [(m["role"], m["content"]) for m in initial["messages"]] == [("user", "Where do I eat pastéis de nata?")]
    assert initial["conversation"]["title"] == "Trip to Lisbon"


def test_it_tells_the_model_picker_each_models_own_capabilities(as_alice: httpx.Client, model: LanguageModel) -> None:
    LanguageModel.objects.create(
        public_id="team/eyes", provider=model.provider, upstream_model="v", vision=True, tools=False, reasoning=True
    )
    cards = {card["id"]: card for card in _initial(as_alice.get("/"))["models"]}
    assert cards["team/chat"]["capabilities"] == {
        "vision": False,
        "tools": True,
        "reasoning": False,
        "json_output": True,
    }
    assert cards["team/eyes"]["capabilities"] == {
        "vision": True,
        "tools": False,
        "reasoning": True,
        "json_output": True,
    }
    assert cards["team/chat"] == model_card(LanguageModel.objects.select_related("provider").get(pk=model.pk))


def test_it_does_not_find_another_users_conversation(as_bob: httpx.Client, alices: Conversation) -> None:
    assert as_bob.get(f"/c/{alices.pk}/").status_code == 404


def test_it_lists_only_my_conversations_matching_a_search(
    as_alice: httpx.Client, as_bob: httpx.Client, alices: Conversation, alice: User
) -> None:
    Conversation.objects.create(owner=alice, title="Tax return")
    page = as_alice.get("/", params={"q": "nata"}).text
    assert "Trip to Lisbon" in page and "Tax return" not in page
    assert "Trip to Lisbon" not in as_bob.get("/", params={"q": "lisbon"}).text


def test_it_finds_nothing_instead_of_failing_for_a_search_no_text_can_match(
    as_alice: httpx.Client, alices: Conversation
) -> None:
    response = as_alice.get("/", params={"q": "\x00"})
    assert response.status_code == 200
    assert "Trip to Lisbon" not in response.text
