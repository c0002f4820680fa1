"""Projects: their own model and system prompt for new chats, moving conversations, owner only; pins."""

from __future__ import annotations

import httpx
import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from catalogue.models import LanguageModel
from conversations import actions
from conversations.models import Conversation, Project
from tests.conversations.conftest import Connect, finished, until
from tests.fake_upstream import FakeUpstream, Reply

API = "/api/projects/"
CONVERSATIONS = "/api/conversations/"


def make(client: httpx.Client, **fields: str) -> dict:  # type: ignore[type-arg]
    answer = client.post(API, json=fields)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_a_new_chat_in_a_project_starts_with_its_model_and_prompt(
    as_alice: httpx.Client, chat_model: LanguageModel
) -> None:
    project = make(as_alice, name="Poems", model="fake/large", system_prompt="Answer in verse.")
    assert project["model"] == "fake/large" and project["conversation_count"] == 0
    started = as_alice.post(CONVERSATIONS, json={"project": project["id"]}).json()
    assert started["project"] == project["id"]
    assert started["model"] == "fake/large" and started["system_prompt"] == "Answer in verse."
    chosen = as_alice.post(
        CONVERSATIONS, json={"project": project["id"], "model": "fake/small", "system_prompt": "Be brief."}
    ).json()
    assert chosen["model"] == "fake/small" and chosen["system_prompt"] == "Be brief."
    assert as_alice.get(f"{API}{project['id']}/").json()["conversation_count"] == 2


async def test_the_projects_prompt_reaches_the_upstream(
    alice: User, chat_model: LanguageModel, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    project = await sync_to_async(Project.objects.create)(owner=alice, name="Poems", system_prompt="Answer in verse.")
    conversation = await sync_to_async(actions.do_create)(alice, project=project.pk)
    fake_upstream.queue(Reply(content="Roses are red."))
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await socket.send_json_to({"type": "send", "content": "A poem please"})
    await until(socket, finished)
    sent = fake_upstream.last.body
    assert sent is not None
    assert sent["messages"][0] == {"role": "system", "content": "Answer in verse."}


def test_conversations_move_between_projects_and_out(
    as_alice: httpx.Client, alice: User, chat_model: LanguageModel
) -> None:
    first, second = make(as_alice, name="One"), make(as_alice, name="Two")
    conversation = Conversation.objects.create(owner=alice, title="Notes")
    url = f"{CONVERSATIONS}{conversation.pk}/"
    assert as_alice.patch(url, json={"project": first["id"]}).json()["project"] == first["id"]
    assert [c["id"] for c in as_alice.get(CONVERSATIONS, params={"project": first["id"]}).json()["results"]] == [
        conversation.pk
    ]
    assert as_alice.patch(url, json={"project": second["id"]}).json()["project"] == second["id"]
    assert as_alice.get(CONVERSATIONS, params={"project": first["id"]}).json()["results"] == []
    assert as_alice.patch(url, json={"project": None}).json()["project"] is None
    assert [c["id"] for c in as_alice.get(CONVERSATIONS, params={"project": "none"}).json()["results"]] == [
        conversation.pk
    ]
    # Deleting a project keeps its conversations.
    as_alice.patch(url, json={"project": second["id"]})
    assert as_alice.delete(f"{API}{second['id']}/").status_code == 204
    conversation.refresh_from_db()
    assert conversation.project is None


def test_another_user_cannot_see_use_or_move_into_a_project(
    as_alice: httpx.Client, as_bob: httpx.Client, bob: User, chat_model: LanguageModel
) -> None:
    secret = make(as_alice, name="Secret plans", system_prompt="HIDDEN")
    pid = secret["id"]
    assert as_bob.get(API).json() == []
    assert as_bob.get(f"{API}{pid}/").status_code == 404
    assert as_bob.patch(f"{API}{pid}/", json={"name": "mine"}).status_code == 404
    assert as_bob.delete(f"{API}{pid}/").status_code == 404
    # Alice's project answers as one that does not exist.
    missing = as_bob.post(CONVERSATIONS, json={"project": pid + 1000}).json()
    refused = as_bob.post(CONVERSATIONS, json={"project": pid})
    assert refused.status_code == 400 and refused.json() == missing
    assert missing["error"]["param"] == "project"
    bobs = Conversation.objects.create(owner=bob)
    moved = as_bob.patch(f"{CONVERSATIONS}{bobs.pk}/", json={"project": pid})
    assert moved.status_code == 400 and moved.json() == missing
    assert as_bob.get(CONVERSATIONS, params={"project": pid}).status_code == 400
    assert not Conversation.objects.filter(owner=bob, project_id=pid).exists()
    assert Project.objects.get(pk=pid).name == "Secret plans"
    assert "HIDDEN" not in as_bob.get("/").text


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ok", "model": "no/such-model"}, "model"),
        ({}, "name"),
        ({"name": "bad\x00name"}, "name"),
    ],
)
def test_bad_projects_are_refused_clearly(
    as_alice: httpx.Client,
    chat_model: LanguageModel,
    body: dict,
    param: str,  # type: ignore[type-arg]
) -> None:
    answer = as_alice.post(API, json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param
    assert not Project.objects.exists()


def test_pinning_puts_a_conversation_first(as_alice: httpx.Client, alice: User) -> None:
    old = Conversation.objects.create(owner=alice, title="Old")
    Conversation.objects.create(owner=alice, title="New")
    assert as_alice.patch(f"{CONVERSATIONS}{old.pk}/", json={"pinned": True}).json()["pinned"] is True
    titles = [c["title"] for c in as_alice.get(CONVERSATIONS, params={"cursor": ""}).json()["results"]]
    assert titles == ["Old", "New"]
