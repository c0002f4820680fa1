"""The stored responses' queries (scoped to their owner) and their read-only admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from responses import store
from responses.models import StoredResponse

pytestmark = pytest.mark.django_db


def keep(user: User, response_id: str, said: str, answered: str, ancestors: list[str] | None = None) -> None:
    items = store.with_ids([{"role": "user", "content": said}])
    output = [{"id": f"msg_{response_id}", "type": "message", "role": "assistant", "content": [answered]}]
    response: dict[str, Any] = {"id": response_id, "model": "m", "output": output}
    store.save(user.pk, response, items, ancestors or [], timezone.now())


def test_input_items_get_ids_types_statuses_and_parts() -> None:
    given = [
        {"role": "user", "content": "Hi"},
        {"type": "message", "role": "assistant", "content": "Hello", "id": "msg_mine"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
    ]
    listed = store.with_ids(given)
    assert listed[0]["id"].startswith("msg_") and listed[0]["type"] == "message"
    assert listed[0]["content"] == [{"type": "input_text", "text": "Hi"}] and listed[0]["status"] == "completed"
    assert listed[1]["id"] == "msg_mine" and listed[1]["content"][0]["type"] == "output_text"
    assert listed[2]["id"].startswith("fco_") and listed[2]["status"] == "completed"


def test_a_conversation_is_its_chain_of_turns_for_its_owner_only(alice: User, bob: User) -> None:
    keep(alice, "resp_1", "one", "uno")
    keep(alice, "resp_2", "two", "dos", ["resp_1"])
    chain, items = store.conversation(alice.pk, "resp_2") or ([], [])
    assert chain == ["resp_1", "resp_2"]
    assert [item.get("role") for item in items] == ["user", "assistant", "user", "assistant"]
    assert store.conversation(bob.pk, "resp_2") is None
    assert store.find(bob.pk, "resp_1") is None and store.input_items(bob.pk, "resp_1") is None
    assert not store.delete(bob.pk, "resp_1") and StoredResponse.objects.count() == 2


def test_a_deleted_turn_leaves_the_rest_of_the_conversation(alice: User) -> None:
    keep(alice, "resp_1", "one", "uno")
    keep(alice, "resp_2", "two", "dos", ["resp_1"])
    assert store.delete(alice.pk, "resp_1")
    _chain, items = store.conversation(alice.pk, "resp_2") or ([], [])
    assert [item["content"][0] for item in items] == [{"type": "input_text", "text": "two"}, "dos"]


def test_the_admin_lists_stored_responses_read_only(client: Client, admin: User, alice: User) -> None:
    keep(alice, "resp_1", "one", "uno")
    client.force_login(admin)
    assert b"resp_1" in client.get("/admin/responses/storedresponse/").content
    page = client.get("/admin/responses/storedresponse/resp_1/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.get("/admin/responses/storedresponse/add/").status_code == 403
