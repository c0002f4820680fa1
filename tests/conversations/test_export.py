"""Exports: one document served as JSON and Markdown downloads, the same data the API shows."""

from __future__ import annotations

import httpx
import pytest

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from conversations import branches, export
from conversations.models import Conversation
from tests.inprocess import InProcessApp
from tests.signed_in import sign_in

API = "/api/conversations/"


@pytest.fixture
def model(transactional_db: None) -> LanguageModel:
    provider = Provider.objects.create(name="up", base_url="http://127.0.0.1:9/v1")
    return LanguageModel.objects.create(public_id="team/chat", provider=provider, upstream_model="m")


@pytest.fixture
def alices(alice: User, model: LanguageModel) -> Conversation:
    conversation = Conversation.objects.create(owner=alice, title="Trip: Lisbon / Porto", model=model)
    branches.append(conversation, role="user", content="Where do I eat pastéis de nata?")
    branches.append(conversation, role="assistant", content="In **Belém**.", model=model)
    return conversation


def test_json_export_is_the_apis_conversation_and_messages(as_alice: httpx.Client, alices: Conversation) -> None:
    answer = as_alice.get(f"{API}{alices.pk}/export/")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-disposition"] == 'attachment; filename="Trip-Lisbon-Porto.json"'
    data = answer.json()
    shown = as_alice.get(f"{API}{alices.pk}/").json()
    messages = as_alice.get(f"{API}{alices.pk}/messages/").json()["results"]
    assert {k: v for k, v in data.items() if k not in ("messages", "exported_at")} == shown
    # The API describes each file (with its owner-only link); the export names them.
    assert [{k: v for k, v in m.items() if k != "attachments"} for m in data["messages"]] == [
        {k: v for k, v in m.items() if k != "attachments"} for m in messages
    ]
    assert [m["attachments"] for m in messages] == [[], []]
    assert [m["attachments"] for m in data["messages"]] == [[], []]
    assert data["messages"][1]["model"] == "team/chat" and data["messages"][1]["role"] == "assistant"


def test_markdown_export_has_title_roles_models_and_times(as_alice: httpx.Client, alices: Conversation) -> None:
    answer = as_alice.get(f"{API}{alices.pk}/export/", params={"format": "md"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/markdown; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="Trip-Lisbon-Porto.md"'
    text = answer.text
    assert text.startswith("# Trip: Lisbon / Porto\n")
    assert "## You · " in text and "## Assistant (team/chat) · " in text
    assert "Where do I eat pastéis de nata?" in text and "In **Belém**." in text
    assert " UTC" in text


def test_the_markdown_lists_attachments_by_name() -> None:
    data = {
        "title": "Files",
        "messages": [
            {
                "role": "user",
                "content": "See the report",
                "model": None,
                "created_at": "2026-01-02T03:04:05Z",
                "attachments": ["report.pdf", "chart.png"],
            }
        ],
    }
    text = export.to_markdown(data)
    assert "## You · 2026-01-02 03:04 UTC" in text
    assert "Attachments: report.pdf, chart.png" in text


def test_another_user_cannot_export_and_a_bad_format_is_refused(
    app: InProcessApp, alices: Conversation, bob: User, as_alice: httpx.Client
) -> None:
    as_bob = sign_in(app.client(), bob)
    for fmt in ("json", "md"):
        refused = as_bob.get(f"{API}{alices.pk}/export/", params={"format": fmt})
        assert refused.status_code == 404
        assert refused.headers["content-type"] == "application/json"
        assert set(refused.json()["error"]) == {"message", "type", "param", "code"}
    assert app.client().get(f"{API}{alices.pk}/export/").status_code in (401, 403)
    assert as_alice.get(f"{API}{alices.pk}/export/", params={"format": "exe"}).status_code == 404


def test_an_untitled_or_odd_title_gets_a_safe_file_name(alice: User) -> None:
    conversation = Conversation.objects.create(owner=alice, title='../"evil"\r\nname')
    assert export.filename(conversation, "md") == "evilname.md"
    untitled = Conversation.objects.create(owner=alice)
    assert export.filename(untitled, "json") == f"conversation-{untitled.pk}.json"
