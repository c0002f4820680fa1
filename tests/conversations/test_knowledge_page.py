"""The Knowledge page: knowledge bases created, renamed, deleted; files uploaded (sniffed), listed with their
state and size, deleted; projects that search one; the chat's picker. Another user's are 404 everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from accounts.models import User
from conversations.models import Conversation, Project
from knowledge import services
from knowledge.models import StoredFile, VectorStore, VectorStoreFile
from tests import sample_files
from tests.conversations.knowledge_fixtures import a_store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("knowledge_media")]

GUIDE = "# Oil\n\nChange the engine oil every 10,000 km with grade 5W-30.\n"


def upload(client: httpx.Client, store: VectorStore, *files: tuple[str, bytes]) -> httpx.Response:
    return client.post(
        f"/knowledge/{store.public_id}/files/",
        files=[("file", (name, data, "application/octet-stream")) for name, data in files],
        headers={"Accept": "application/json"},
    )


def listed(client: httpx.Client, store: VectorStore) -> list[dict[str, Any]]:
    response = client.get(f"/knowledge/{store.public_id}/files/")
    assert response.status_code == 200
    return list(response.json()["files"])


def test_the_nav_links_to_the_knowledge_page_which_lists_the_users_own_bases(
    as_alice: httpx.Client, alice: User, bob: User
) -> None:
    a_store(alice, "Alice's manuals")
    a_store(bob, "Bob's secrets")
    page = as_alice.get("/knowledge/")
    assert page.status_code == 200
    assert '<a href="/knowledge/">Knowledge</a>' in page.text
    assert "Alice&#x27;s manuals" in page.text and "Bob" not in page.text
    assert "full-text search" in page.text  # no embedding model is configured


def test_a_knowledge_base_is_created_renamed_and_deleted_with_its_files(as_alice: httpx.Client, alice: User) -> None:
    created = as_alice.post("/knowledge/", data={"name": "Car manuals"})
    assert created.status_code == 302
    store = VectorStore.objects.get(owner=alice)
    assert store.name == "Car manuals" and created.headers["location"] == f"/knowledge/{store.public_id}/"
    assert upload(as_alice, store, ("guide.md", GUIDE.encode())).status_code == 201

    assert as_alice.post(f"/knowledge/{store.public_id}/rename/", data={"name": " Garage "}).status_code == 302
    store.refresh_from_db()
    assert store.name == "Garage"
    assert "Garage" in as_alice.get(f"/knowledge/{store.public_id}/").text

    assert as_alice.post(f"/knowledge/{store.public_id}/delete/").status_code == 302
    assert not VectorStore.objects.filter(owner=alice).exists()
    assert not StoredFile.objects.filter(owner=alice).exists()


def test_a_nameless_knowledge_base_is_refused_with_a_readable_error(as_alice: httpx.Client, alice: User) -> None:
    answer = as_alice.post("/knowledge/", data={"name": "   "}, follow_redirects=True)
    assert answer.status_code == 200 and "needs a name" in answer.text
    assert not VectorStore.objects.filter(owner=alice).exists()


def test_uploads_are_queued_listed_with_state_and_size_and_complete(
    as_alice: httpx.Client, alice: User, ingest_at_once: None
) -> None:
    store = a_store(alice)
    answer = upload(as_alice, store, ("guide.md", GUIDE.encode()), ("notes.txt", b"Tyres: 2.2 bar."))
    assert answer.status_code == 201, answer.text
    files = listed(as_alice, store)
    assert [(f["filename"], f["bytes"], f["status"]) for f in files] == [  # newest first
        ("notes.txt", 15, "completed"),
        ("guide.md", len(GUIDE.encode()), "completed"),
    ]
    page = as_alice.get(f"/knowledge/{store.public_id}/").text
    assert f'data-file-id="{files[1]["id"]}" data-status="completed"' in page


def test_an_upload_waits_in_progress_for_the_worker(as_alice: httpx.Client, alice: User) -> None:
    store = a_store(alice)
    services.register_enqueue(lambda entry_id: None)  # the worker has not come to it yet
    try:
        assert upload(as_alice, store, ("guide.md", GUIDE.encode())).status_code == 201
    finally:
        from knowledge import tasks

        services.register_enqueue(tasks.enqueue)
    assert [f["status"] for f in listed(as_alice, store)] == ["in_progress"]


def test_a_file_that_fails_to_ingest_shows_failed_with_the_reason(
    as_alice: httpx.Client, alice: User, ingest_at_once: None
) -> None:
    store = a_store(alice)
    # A PDF with no text: kept, but nothing to search.
    assert upload(as_alice, store, ("scan.pdf", sample_files.pdf(""))).status_code == 201
    [file] = listed(as_alice, store)
    assert file["status"] == "failed" and file["error"]
    assert "failed: " in as_alice.get(f"/knowledge/{store.public_id}/").text


@pytest.mark.parametrize(
    ("name", "data"),
    [("photo.png", sample_files.png()), ("tool.exe", b"MZ\x90\x00" + bytes(200)), ("empty.txt", b"")],
)
def test_binary_or_empty_uploads_are_refused_and_nothing_is_kept(
    as_alice: httpx.Client, alice: User, name: str, data: bytes
) -> None:
    store = a_store(alice)
    answer = upload(as_alice, store, (name, data))
    assert answer.status_code == 415
    assert answer.json()["error"]["param"] == "file"
    assert listed(as_alice, store) == [] and not StoredFile.objects.filter(owner=alice).exists()


def test_an_upload_past_the_quota_is_a_clear_413(as_alice: httpx.Client, alice: User, settings: Any) -> None:
    settings.KNOWLEDGE_QUOTA_BYTES = 100
    store = a_store(alice)
    answer = upload(as_alice, store, ("big.txt", b"x" * 101))
    assert answer.status_code == 413 and "quota" in answer.json()["error"]["message"]
    settings.KNOWLEDGE_QUOTA_FILES = 1
    assert upload(as_alice, store, ("a.txt", b"a")).status_code == 201
    answer = upload(as_alice, store, ("b.txt", b"b"))
    assert answer.status_code == 413 and "files" in answer.json()["error"]["message"]
    assert StoredFile.objects.filter(owner=alice).count() == 1


def test_an_upload_without_a_file_is_a_clear_400(as_alice: httpx.Client, alice: User) -> None:
    store = a_store(alice)
    answer = as_alice.post(f"/knowledge/{store.public_id}/files/", headers={"Accept": "application/json"})
    assert answer.status_code == 400 and answer.json()["error"]["message"] == "Choose a file to upload."


def test_a_file_is_deleted_from_the_base_and_storage(
    as_alice: httpx.Client, alice: User, knowledge_media: Path, ingest_at_once: None
) -> None:
    store = a_store(alice)
    upload(as_alice, store, ("guide.md", GUIDE.encode()))
    [file] = listed(as_alice, store)
    assert [p for p in knowledge_media.rglob("*") if p.is_file()]
    answer = as_alice.post(f"/knowledge/{store.public_id}/files/{file['id']}/delete/")
    assert answer.status_code == 302
    assert listed(as_alice, store) == []
    assert not StoredFile.objects.filter(owner=alice).exists()
    assert not [p for p in knowledge_media.rglob("*") if p.is_file()]


def test_another_users_knowledge_base_and_files_are_404_on_every_route(
    as_bob: httpx.Client, alice: User, ingest_at_once: None
) -> None:
    store = a_store(alice, "Alice's manuals")
    entry = services.add_file(store, services.store_file(alice, "guide.md", GUIDE.encode()))
    file_id = entry.file.public_id
    base = f"/knowledge/{store.public_id}"
    assert as_bob.get(f"{base}/").status_code == 404
    assert as_bob.get(f"{base}/files/").status_code == 404
    assert upload(as_bob, store, ("mine.txt", b"bob's")).status_code == 404
    assert as_bob.post(f"{base}/rename/", data={"name": "pwned"}).status_code == 404
    assert as_bob.post(f"{base}/projects/", data={}).status_code == 404
    assert as_bob.post(f"{base}/files/{file_id}/delete/").status_code == 404
    assert as_bob.post(f"{base}/delete/").status_code == 404
    store.refresh_from_db()
    assert store.name == "Alice's manuals"
    assert VectorStoreFile.objects.filter(store=store).count() == 1


def test_another_users_file_cannot_be_deleted_through_ones_own_base(
    as_bob: httpx.Client, alice: User, bob: User
) -> None:
    alices = services.store_file(alice, "guide.md", GUIDE.encode())
    bobs_store = a_store(bob)
    answer = as_bob.post(f"/knowledge/{bobs_store.public_id}/files/{alices.public_id}/delete/")
    assert answer.status_code == 404
    assert StoredFile.objects.filter(pk=alices.pk).exists()


def test_a_knowledge_base_is_attached_to_projects_of_ones_own_only(
    as_alice: httpx.Client, alice: User, bob: User
) -> None:
    store = a_store(alice)
    garage = Project.objects.create(owner=alice, name="Garage")
    Project.objects.create(owner=alice, name="Kitchen")
    bobs = Project.objects.create(owner=bob, name="Bob's")
    answer = as_alice.post(f"/knowledge/{store.public_id}/projects/", data={"project": [str(garage.pk)]})
    assert answer.status_code == 302
    assert list(Project.objects.filter(knowledge_bases=store)) == [garage]
    assert as_alice.post(f"/knowledge/{store.public_id}/projects/", data={"project": [str(bobs.pk)]}).status_code == 404
    assert as_alice.post(f"/knowledge/{store.public_id}/projects/", data={"project": ["x"]}).status_code == 404
    assert list(Project.objects.filter(knowledge_bases=store)) == [garage]
    assert as_alice.post(f"/knowledge/{store.public_id}/projects/", data={}).status_code == 302
    assert not Project.objects.filter(knowledge_bases=store).exists()


def put(client: httpx.Client, conversation_id: int, body: Any) -> httpx.Response:
    return client.put(
        f"/c/{conversation_id}/knowledge/",
        content=json.dumps(body),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )


def test_the_chats_picker_attaches_ones_own_bases_to_a_conversation(as_alice: httpx.Client, alice: User) -> None:
    manuals, recipes = a_store(alice, "Manuals"), a_store(alice, "Recipes")
    conversation = Conversation.objects.create(owner=alice)
    shown = as_alice.get(f"/c/{conversation.pk}/knowledge/").json()["knowledge_bases"]
    assert [(s["name"], s["attached"]) for s in shown] == [("Recipes", False), ("Manuals", False)]  # newest first
    answer = put(as_alice, conversation.pk, {"knowledge_bases": [recipes.public_id]})
    assert answer.status_code == 200
    assert [(s["id"], s["attached"]) for s in answer.json()["knowledge_bases"]] == [
        (recipes.public_id, True),
        (manuals.public_id, False),
    ]
    assert list(conversation.knowledge_bases.all()) == [recipes]


@pytest.mark.parametrize("body", [{"knowledge_bases": "vs_1"}, {"knowledge_bases": [1]}, [], {}])
def test_the_picker_refuses_malformed_choices_with_a_clear_400(as_alice: httpx.Client, alice: User, body: Any) -> None:
    conversation = Conversation.objects.create(owner=alice)
    answer = put(as_alice, conversation.pk, body)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "knowledge_bases"


def test_another_users_base_or_conversation_cannot_be_attached(as_bob: httpx.Client, alice: User, bob: User) -> None:
    alices_store = a_store(alice)
    alices_chat = Conversation.objects.create(owner=alice)
    bobs_chat = Conversation.objects.create(owner=bob)
    assert put(as_bob, bobs_chat.pk, {"knowledge_bases": [alices_store.public_id]}).status_code == 404
    assert put(as_bob, alices_chat.pk, {"knowledge_bases": []}).status_code == 404
    assert as_bob.get(f"/c/{alices_chat.pk}/knowledge/").status_code == 404
    assert not bobs_chat.knowledge_bases.exists()


def test_a_file_lost_from_storage_fails_without_naming_the_servers_paths(
    as_alice: httpx.Client, alice: User, knowledge_media: Path
) -> None:
    store = a_store(alice)
    entry = services.add_file(store, services.store_file(alice, "guide.md", GUIDE.encode()))
    for path in knowledge_media.rglob("*"):
        if path.is_file():
            path.unlink()
    services.ingest(entry.pk)
    [file] = listed(as_alice, store)
    assert file["status"] == "failed"
    assert file["error"] == "The file's content could not be read from storage."


def test_a_hostile_file_name_is_cleaned_and_shown_as_text(as_alice: httpx.Client, alice: User) -> None:
    store = a_store(alice)
    assert upload(as_alice, store, ('../<img src=x onerror="alert(1)">.txt', b"hello")).status_code == 201
    [file] = listed(as_alice, store)
    assert file["filename"] == '<img src=x onerror="alert(1)">.txt'
    page = as_alice.get(f"/knowledge/{store.public_id}/").text
    assert "<img src=x" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.txt" in page
