"""/v1/files and /v1/vector_stores with the openai SDK, the ingestion worker a real process, embeddings
through our routing to the fake upstream (the owner's ledger counts them)."""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Callable
from typing import Any

import openai
import pytest

from accounts.keys import create_key
from catalogue.models import LanguageModel
from knowledge.models import VectorStoreFile
from tests.conftest import make_user
from tests.fake_upstream import FakeUpstream
from tests.gateway.conftest import Gateway, wait_for_usage
from tests.knowledge_worker import DEADLINE
from tests.openai_schema import validate

pytestmark = pytest.mark.django_db(transaction=True)

EMBED = "acme/embed-small"
GUIDE = (
    b"# Oven guide\n\n## Cleaning\n\nWipe the door with vinegar.\n\n## Errors\n\nError E42 means the fan is blocked.\n"
)
OTHER = b"# Radio\n\nThe radio has two speakers and a volume knob.\n"


@pytest.fixture
def embed(gateway: Gateway) -> LanguageModel:
    return LanguageModel.objects.create(
        public_id=EMBED, provider=gateway.provider, upstream_model="fake-embed", kind="embedding", context_length=8192
    )


@pytest.fixture
def client(gateway: Gateway, start_worker: Callable[[], subprocess.Popen[str]]) -> openai.OpenAI:
    start_worker()
    return gateway.client()


def upload(client: openai.OpenAI, name: str, data: bytes) -> Any:
    return client.files.create(file=(name, io.BytesIO(data)), purpose="assistants")


def completed(client: openai.OpenAI, store_id: str, file_id: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        entry = client.vector_stores.files.retrieve(file_id, vector_store_id=store_id)
        if entry.status != "in_progress":
            return entry
        time.sleep(0.1)
    raise AssertionError("the file was never ingested")


def test_the_sdk_uploads_builds_a_store_and_searches_it_with_embeddings_counted_in_the_ledger(
    client: openai.OpenAI, embed: LanguageModel, fake_upstream: FakeUpstream
) -> None:
    guide = upload(client, "oven.md", GUIDE)
    validate(guide.model_dump(mode="json", exclude_unset=True), "OpenAIFile")
    radio = upload(client, "radio.md", OTHER)
    store = client.vector_stores.create(name="Manuals", extra_body={"embedding_model": EMBED})
    assert store.name == "Manuals" and store.status == "completed"
    added = client.vector_stores.files.create(vector_store_id=store.id, file_id=guide.id, attributes={"kind": "oven"})
    assert added.status == "in_progress"
    client.vector_stores.files.create(vector_store_id=store.id, file_id=radio.id, attributes={"kind": "radio"})
    entry = completed(client, store.id, guide.id)
    assert entry.status == "completed" and entry.usage_bytes > 0
    validate(entry.model_dump(mode="json", exclude_unset=True), "VectorStoreFileObject")
    assert completed(client, store.id, radio.id).status == "completed"

    found = client.vector_stores.search(store.id, query="What does error E42 mean?", max_num_results=3)
    assert found.data[0].filename == "oven.md" and "E42" in found.data[0].content[0].text
    assert 0 < found.data[0].score <= 1 and found.data[0].attributes == {"kind": "oven"}
    filtered = client.vector_stores.search(
        store.id, query="speakers", filters={"type": "eq", "key": "kind", "value": "oven"}
    )
    assert filtered.data and {hit.filename for hit in filtered.data} == {"oven.md"}
    fetched = client.vector_stores.retrieve(store.id)
    assert fetched.file_counts.completed == 2 and fetched.usage_bytes > 0
    validate(fetched.model_dump(mode="json", exclude_unset=True), "VectorStoreObject")
    # Every passage of both files, then the query: embedded at the fake upstream, each call in alice's ledger.
    assert fake_upstream.requests_to("/embeddings")
    rows = wait_for_usage(3, model_public_id=EMBED)
    assert len(rows) >= 3 and all(row.user_id == fetched_owner(store.id) for row in rows)


def fetched_owner(store_id: str) -> int:
    from knowledge.models import VectorStore

    return VectorStore.objects.get(public_id=store_id).owner_id


def test_listing_pages_with_cursors_as_openai_does(client: openai.OpenAI) -> None:
    made = [client.vector_stores.create(name=f"s{i}").id for i in range(5)]
    first = client.vector_stores.list(limit=2)
    assert [s.id for s in first.data] == made[::-1][:2] and first.has_more
    assert [s.id for s in client.vector_stores.list()] == made[::-1]
    after = client.vector_stores.list(limit=2, after=made[3])
    assert [s.id for s in after.data] == [made[2], made[1]]
    assert [s.id for s in client.vector_stores.list(order="asc", before=made[3], limit=2)] == [made[1], made[2]]


def test_file_batches_add_many_files_and_a_cancel_stops_those_not_yet_ingested(
    gateway: Gateway, client: openai.OpenAI
) -> None:
    files = [upload(client, f"f{i}.md", GUIDE + str(i).encode()) for i in range(3)]
    store = client.vector_stores.create(name="batch")
    batch = client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=[f.id for f in files])
    validate(batch.model_dump(mode="json", exclude_unset=True), "VectorStoreFileBatchObject")
    assert batch.file_counts.total == 3
    listed = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)
    assert sorted(f.id for f in listed.data) == sorted(f.id for f in files)
    cancelled = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled"
    states = {completed(client, store.id, f.id).status for f in files}
    assert states <= {"completed", "cancelled"}


def test_changing_a_stores_embedding_model_re_embeds_its_files(
    client: openai.OpenAI, embed: LanguageModel, fake_upstream: FakeUpstream
) -> None:
    guide = upload(client, "oven.md", GUIDE)
    store = client.vector_stores.create(name="plain", file_ids=[guide.id], extra_body={"embedding_model": None})
    assert completed(client, store.id, guide.id).status == "completed"
    assert not fake_upstream.requests_to("/embeddings")
    client.vector_stores.update(store.id, extra_body={"embedding_model": EMBED})
    assert completed(client, store.id, guide.id).status == "completed"
    assert fake_upstream.requests_to("/embeddings")
    assert client.vector_stores.retrieve(store.id).model_extra["embedding_model"] == EMBED  # type: ignore[index]


def test_a_file_that_cannot_be_read_fails_with_its_reason(client: openai.OpenAI) -> None:
    broken = upload(client, "broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50)
    store = client.vector_stores.create(name="s", file_ids=[broken.id])
    entry = completed(client, store.id, broken.id)
    assert entry.status == VectorStoreFile.Status.FAILED
    assert entry.last_error is not None and "could not be read" in entry.last_error.message


def test_deleting_a_file_removes_it_from_its_stores(client: openai.OpenAI) -> None:
    guide = upload(client, "oven.md", GUIDE)
    store = client.vector_stores.create(name="s", file_ids=[guide.id])
    completed(client, store.id, guide.id)
    assert client.files.delete(guide.id).deleted
    assert client.vector_stores.files.list(vector_store_id=store.id).data == []
    assert client.vector_stores.search(store.id, query="E42").data == []
    assert client.vector_stores.delete(store.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)


ROUTES = [
    ("GET", "/v1/files/{file}"),
    ("DELETE", "/v1/files/{file}"),
    ("GET", "/v1/files/{file}/content"),
    ("GET", "/v1/vector_stores/{store}"),
    ("POST", "/v1/vector_stores/{store}"),
    ("DELETE", "/v1/vector_stores/{store}"),
    ("POST", "/v1/vector_stores/{store}/search"),
    ("GET", "/v1/vector_stores/{store}/files"),
    ("POST", "/v1/vector_stores/{store}/files"),
    ("GET", "/v1/vector_stores/{store}/files/{file}"),
    ("POST", "/v1/vector_stores/{store}/files/{file}"),
    ("DELETE", "/v1/vector_stores/{store}/files/{file}"),
    ("POST", "/v1/vector_stores/{store}/file_batches"),
    ("GET", "/v1/vector_stores/{store}/file_batches/{batch}"),
    ("POST", "/v1/vector_stores/{store}/file_batches/{batch}/cancel"),
    ("GET", "/v1/vector_stores/{store}/file_batches/{batch}/files"),
]
BODIES = {
    "search": {"query": "E42"},
    "files": {"file_id": "{file}"},
    "file_batches": {"file_ids": ["{file}"]},
    "{store}": {"name": "bob's now"},
}


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_it_refuses_another_users_files_stores_and_batches_on_every_route(
    gateway: Gateway, method: str, route: str
) -> None:
    alice = gateway.client()
    guide = upload(alice, "oven.md", GUIDE)
    store = alice.vector_stores.create(name="alice's", file_ids=[guide.id])
    batch = alice.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=[guide.id])
    ids = {"file": guide.id, "store": store.id, "batch": batch.id}
    _, bobs_secret = create_key(make_user("bob"), "bob")
    body = next((b for suffix, b in BODIES.items() if route.endswith(suffix)), {"attributes": {}})
    sent = {k: ([v.format(**ids) for v in value] if isinstance(value, list) else value) for k, value in body.items()}
    sent = {k: (value.format(**ids) if isinstance(value, str) else value) for k, value in sent.items()}
    answer = gateway.http.request(
        method, route.format(**ids), headers=gateway.headers(bobs_secret), json=sent if method == "POST" else None
    )
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "not_found"
    assert alice.vector_stores.retrieve(store.id).name == "alice's"
    assert alice.files.retrieve(guide.id).filename == "oven.md"


def test_it_refuses_adding_another_users_file_to_ones_own_store(gateway: Gateway) -> None:
    guide = upload(gateway.client(), "oven.md", GUIDE)
    _, bobs_secret = create_key(make_user("bob"), "bob")
    bob = gateway.client(bobs_secret)
    store = bob.vector_stores.create(name="bob's")
    for attach in (
        lambda: bob.vector_stores.files.create(vector_store_id=store.id, file_id=guide.id),
        lambda: bob.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=[guide.id]),
        lambda: bob.vector_stores.create(name="x", file_ids=[guide.id]),
    ):
        with pytest.raises(openai.NotFoundError):
            attach()
    assert bob.vector_stores.files.list(vector_store_id=store.id).data == []
    assert [s.name for s in bob.vector_stores.list()] == ["bob's"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": 5}, "name"),
        ({"metadata": {"k": 1}}, "metadata.k"),
        ({"expires_after": {"anchor": "last_active_at", "days": 0}}, "expires_after.days"),
        (
            {
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150},
                }
            },
            "chunking_strategy",
        ),
        ({"embedding_model": "acme/chat-small"}, "embedding_model"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_store_requests_are_a_400_naming_the_param(gateway: Gateway, body: dict[str, Any], param: str) -> None:
    answer = gateway.http.post("/v1/vector_stores", headers=gateway.headers(), json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "query"),
        ({"query": "x" * 5000}, "query"),
        ({"query": "x", "max_num_results": 51}, "max_num_results"),
        ({"query": "x", "filters": {"type": "near", "key": "a", "value": 1}}, "filters"),
        ({"query": "x", "ranking_options": {"score_threshold": 2}}, "ranking_options.score_threshold"),
    ],
)
def test_bad_searches_are_a_400_naming_the_param(gateway: Gateway, body: dict[str, Any], param: str) -> None:
    store = gateway.client().vector_stores.create(name="s")
    answer = gateway.http.post(f"/v1/vector_stores/{store.id}/search", headers=gateway.headers(), json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param
