"""A chat model restricted to groups, for anyone outside them: not in the picker nor /api/, refused there as
a model that does not exist, and a conversation set to it is answered as one whose model is gone."""

from __future__ import annotations

import json

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group

from accounts import groups
from accounts.models import User
from catalogue.models import LanguageModel
from conversations.models import Conversation
from tests.conversations.conftest import Connect, finished, until
from tests.fake_upstream import FakeUpstream, Reply

SECRET = "fake/large"  # of the conftest's chat models; "fake/small" stays open to everyone


@pytest.fixture
def research(chat_model: LanguageModel) -> Group:
    group, _ = groups.add_group("research")
    LanguageModel.objects.get(public_id=SECRET).groups.set([group])
    return group


def _picker(client: httpx.Client) -> str:
    return client.get("/").text


def test_the_model_picker_shows_a_restricted_model_to_members_only(
    research: Group, as_alice: httpx.Client, as_bob: httpx.Client, bob: User
) -> None:
    groups.add_member(research, bob)
    assert SECRET not in _picker(as_alice) and "fake/small" in _picker(as_alice)
    assert SECRET in _picker(as_bob)


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("POST", "/api/conversations/", "model"),
        ("PATCH", "/api/conversations/{id}/", "model"),
        ("POST", "/api/projects/", "model"),
    ],
)
def test_the_rest_api_refuses_a_restricted_model_as_a_missing_one(
    research: Group, as_alice: httpx.Client, alice: User, method: str, path: str, field: str
) -> None:
    mine = Conversation.objects.create(owner=alice, title="t")
    url = path.format(id=mine.pk)

    def answer(model: str) -> tuple[int, str]:
        response = as_alice.request(method, url, json={field: model, "name": "p"})
        return response.status_code, response.text

    status, body = answer(SECRET)
    missing_status, missing = answer("fake/none")
    assert missing_status == 400
    assert (status, json.loads(body)) == (400, json.loads(missing.replace("fake/none", SECRET)))
    mine.refresh_from_db()
    assert mine.model is None


async def test_a_conversation_set_to_a_restricted_model_is_answered_by_a_model_the_user_may_use(
    research: Group, alice: User, bob: User, connect: Connect, fake_upstream: FakeUpstream
) -> None:
    secret = await LanguageModel.objects.aget(public_id=SECRET)
    await sync_to_async(groups.add_member)(research, bob)
    for owner, expected in ((alice, "fake-small"), (bob, "fake-large")):
        conversation = await Conversation.objects.acreate(owner=owner, model=secret)
        fake_upstream.queue(Reply(content="hello"))
        socket = await connect(owner, conversation.pk)
        await until(socket, lambda f: f["type"] == "messages")
        await socket.send_json_to({"type": "send", "content": "hi"})
        done, _ = await until(socket, finished)
        assert done["message"]["status"] == "complete"
        assert fake_upstream.last.body is not None and fake_upstream.last.body["model"] == expected


def test_a_key_asked_of_the_rest_api_for_a_restricted_model_is_refused_as_for_a_missing_one(
    research: Group, as_alice: httpx.Client
) -> None:
    def answer(model: str) -> tuple[int, str]:
        response = as_alice.post("/api/keys/", json={"name": "k", "allowed_models": [model]})
        return response.status_code, response.text

    status, body = answer(SECRET)
    missing_status, missing = answer("fake/none")
    assert missing_status == 400
    assert (status, json.loads(body)) == (400, json.loads(missing.replace("fake/none", SECRET)))
