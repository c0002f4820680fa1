"""The chat page and the REST API refuse what PostgreSQL cannot store, and deep JSON, with a 4xx.

Each of these answered 500 with a traceback before: a search for a NUL (`?q=%00`), 100,000-level
nested JSON, a NUL or an unpaired surrogate in a title, prompt or message.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.models import User
from conversations import branches, services
from conversations.models import Conversation, Message

pytestmark = pytest.mark.django_db

API = "/api/conversations/"
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def as_alice(client: Client, alice: User) -> Client:
    client.force_login(alice)
    return client


@pytest.fixture
def alices(alice: User) -> Conversation:
    conversation = Conversation.objects.create(owner=alice, title="Trip to Lisbon")
    branches.append(conversation, role="user", content="Where do I eat?")
    return conversation


def test_searching_for_a_nul_finds_nothing_on_the_page(as_alice: Client, alices: Conversation) -> None:
    response = as_alice.get("/", {"q": "\x00"})
    assert response.status_code == 200
    assert b"Trip to Lisbon" not in response.content


def test_searching_for_a_nul_in_the_json_is_a_400(as_alice: Client, alices: Conversation) -> None:
    response = as_alice.get(API, {"q": "a\x00"})
    assert response.status_code == 400
    assert "NUL" in response.json()["error"]["message"]


@pytest.mark.parametrize("method", ["post", "patch"])
def test_deeply_nested_json_is_a_400(as_alice: Client, alices: Conversation, method: str) -> None:
    url = API if method == "post" else f"{API}{alices.pk}/"
    response = getattr(as_alice, method)(url, DEEP, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]["message"]
    assert Conversation.objects.count() == 1


@pytest.mark.parametrize(
    "raw",
    ['{"title": "a\\u0000b"}', '{"system_prompt": "\\ud800"}', '{"model": "x\\u0000"}', '{"title": 1e400}', "NaN"],
)
def test_text_that_cannot_be_stored_is_a_400(as_alice: Client, alices: Conversation, raw: str) -> None:
    response = as_alice.patch(f"{API}{alices.pk}/", raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "error" in response.json()
    alices.refresh_from_db()
    assert alices.title == "Trip to Lisbon"


@pytest.mark.parametrize("content", ["a\x00b", "a\ud800b"])
def test_a_message_with_a_nul_or_a_lone_surrogate_is_refused_before_it_is_stored(
    alice: User, alices: Conversation, content: str
) -> None:
    with pytest.raises(services.ChatError, match="cannot be stored"):
        services.add_user_message(alice, alices.pk, content)
    assert Message.objects.filter(conversation=alices).count() == 1


def test_the_chat_page_and_its_json_are_never_cached(as_alice: Client, alices: Conversation) -> None:
    for url in ("/", f"/c/{alices.pk}/", API, f"{API}{alices.pk}/"):
        assert "no-store" in as_alice.get(url)["Cache-Control"], url
    created = as_alice.post(API, json.dumps({"title": "x"}), content_type="application/json")
    assert "no-store" in created["Cache-Control"]
