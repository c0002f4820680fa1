"""Hybrid search on PostgreSQL: fusion beats either ranking alone, filters hold, other users are refused."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from catalogue.models import LanguageModel
from knowledge import services
from knowledge.filters import FilterError, to_q
from knowledge.models import VectorStore, VectorStoreFile
from knowledge.search import MAX_QUERY_CHARS, SearchRefused, fuse, search, search_stores
from tests.knowledge.conftest import ingested

pytestmark = pytest.mark.django_db

TARGET = "Automobile servicing: replace the engine oil yearly."
DOCUMENTS = {
    "target.md": TARGET,
    # Nearest in meaning (car and oil) without a word of the query.
    "vector-decoy.md": "Vehicle lubricant.",
    "grades.md": "Vehicle lubricant grades and viscosity.",
    "grades-2.md": "Automobile lubricant grade viscosity tables.",
    # Most of the query's words, about something else.
    "text-decoy.md": "Change the car radio, change the car speakers.",
}
QUERY = "car oil change"


@pytest.fixture
def store(alice: User, embedding_model: LanguageModel, embedder: None) -> VectorStore:
    store = services.create_store(alice, "manuals", embedding_model)
    for name, text in DOCUMENTS.items():
        assert ingested(store, name, text).status == VectorStoreFile.Status.COMPLETED
    store.refresh_from_db()
    return store


def first(hits: list[Any]) -> list[str]:
    return [hit.filename for hit in hits]


def test_hybrid_ranks_the_answer_first_where_each_ranking_alone_ranks_it_second(
    alice: User, store: VectorStore
) -> None:
    vector = first(search(alice, store.public_id, QUERY, mode="vector"))
    text = first(search(alice, store.public_id, QUERY, mode="text"))
    hybrid = first(search(alice, store.public_id, QUERY))
    assert vector[:2] == ["vector-decoy.md", "target.md"]
    assert text[:2] == ["text-decoy.md", "target.md"]
    assert hybrid[0] == "target.md"


def test_a_hit_carries_its_passage_file_and_score(alice: User, store: VectorStore) -> None:
    hit = search(alice, store.public_id, QUERY, max_results=1)[0]
    assert (hit.text, hit.filename, hit.page, hit.section) == (TARGET, "target.md", None, "")
    assert hit.file_id.startswith("file-") and hit.score > 0


def test_a_store_without_an_embedding_model_is_searched_by_full_text(alice: User) -> None:
    store = services.create_store(alice, "plain")
    ingested(store, "a.md", "The thermostat reports error E1234.")
    ingested(store, "b.md", "The pump is quiet.")
    assert first(search(alice, store.public_id, "E1234 thermostat")) == ["a.md"]


def test_it_refuses_another_users_vector_store(bob: User, store: VectorStore) -> None:
    with pytest.raises(VectorStore.DoesNotExist):
        search(bob, store.public_id, QUERY)


def test_it_refuses_adding_another_users_file_to_ones_store(alice: User, bob: User) -> None:
    bobs_file = services.store_file(bob, "secret.md", b"bob's secret")
    with pytest.raises(services.StoredFile.DoesNotExist):
        services.add_file(services.create_store(alice), bobs_file)


@pytest.mark.parametrize("query", ["", "   ", "x" * (MAX_QUERY_CHARS + 1)])
def test_it_refuses_a_query_out_of_bounds(alice: User, store: VectorStore, query: str) -> None:
    with pytest.raises(SearchRefused):
        search(alice, store.public_id, query)


def test_a_query_of_no_words_finds_nothing_by_text(alice: User, store: VectorStore) -> None:
    assert search(alice, store.public_id, "&|!:*()", mode="text") == []


@pytest.fixture
def tagged(alice: User) -> VectorStore:
    store = services.create_store(alice, "tagged")
    ingested(store, "en-2019.md", "release notes", lang="en", year=2019, draft=False)
    ingested(store, "en-2024.md", "release notes", lang="en", year=2024, draft=True)
    ingested(store, "fr-2024.md", "release notes", lang="fr", year=2024, draft=False)
    ingested(store, "untagged.md", "release notes")
    return store


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"type": "eq", "key": "lang", "value": "en"}, {"en-2019.md", "en-2024.md"}),
        ({"type": "ne", "key": "lang", "value": "en"}, {"fr-2024.md"}),
        ({"type": "gt", "key": "year", "value": 2019}, {"en-2024.md", "fr-2024.md"}),
        ({"type": "gte", "key": "year", "value": 2019}, {"en-2019.md", "en-2024.md", "fr-2024.md"}),
        ({"type": "lt", "key": "year", "value": 2024}, {"en-2019.md"}),
        ({"type": "lte", "key": "year", "value": 2019}, {"en-2019.md"}),
        # A string is never "less" than a number.
        ({"type": "lt", "key": "lang", "value": 5}, set()),
        ({"type": "eq", "key": "draft", "value": True}, {"en-2024.md"}),
        ({"type": "in", "key": "lang", "value": ["fr", "de"]}, {"fr-2024.md"}),
        ({"type": "nin", "key": "lang", "value": ["fr", "de"]}, {"en-2019.md", "en-2024.md"}),
        (
            {
                "type": "and",
                "filters": [
                    {"type": "eq", "key": "lang", "value": "en"},
                    {"type": "gte", "key": "year", "value": 2020},
                ],
            },
            {"en-2024.md"},
        ),
        (
            {
                "type": "or",
                "filters": [{"type": "eq", "key": "lang", "value": "fr"}, {"type": "lt", "key": "year", "value": 2020}],
            },
            {"en-2019.md", "fr-2024.md"},
        ),
    ],
)
def test_attribute_filters_choose_the_files_searched(
    alice: User, tagged: VectorStore, filters: dict[str, Any], expected: set[str]
) -> None:
    assert set(first(search(alice, tagged.public_id, "release", filters=filters))) == expected


@pytest.mark.parametrize(
    "filters",
    [
        {"type": "like", "key": "a", "value": "b"},
        {"type": "eq", "key": "", "value": "b"},
        {"type": "eq", "key": "a", "value": {"nested": 1}},
        {"type": "in", "key": "a", "value": "not a list"},
        {"type": "and", "filters": []},
        {"type": "or", "filters": [{"type": "eq", "key": "a", "value": 1}] * 60},
        "eq",
    ],
)
def test_it_refuses_a_malformed_filter(filters: Any) -> None:
    with pytest.raises(FilterError):
        to_q(filters)


def test_fusion_prefers_what_both_rankings_hold() -> None:
    assert fuse([[1, 2, 3], [4, 2, 5]])[0][0] == 2


def test_a_vector_search_of_an_indexed_dimension_can_use_its_hnsw_index(store: VectorStore) -> None:
    from django.db import connection, transaction

    from knowledge.models import Chunk
    from knowledge.search import by_vector_query
    from tests.knowledge.conftest import DIMENSIONS, concept_vector

    query = by_vector_query(Chunk.objects.filter(store=store), DIMENSIONS, concept_vector("car oil"))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        # Few rows: the planner may prefer the store_id index and a sort; without sorts only an ordering index serves.
        cursor.execute("SET LOCAL enable_sort = off")
        plan = query.values("pk")[:10].explain()
    assert f"knowledge_chunk_hnsw_{DIMENSIONS}" in plan


def test_several_stores_are_searched_together_and_merged_by_score(alice: User, store: VectorStore) -> None:
    other = services.create_store(alice, "plain")
    ingested(other, "thermostat.md", "The thermostat reports error E1234.")
    hits = search_stores(alice, [store.public_id, other.public_id], "thermostat error E1234", max_results=3)
    assert hits[0].filename == "thermostat.md"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_a_search_of_several_stores_refuses_another_users_store(alice: User, bob: User, store: VectorStore) -> None:
    bobs = services.create_store(bob, "bob's")
    with pytest.raises(VectorStore.DoesNotExist):
        search_stores(alice, [store.public_id, bobs.public_id], QUERY)


def test_the_knowledge_pages_listings_hold_only_the_users_own(alice: User, bob: User, store: VectorStore) -> None:
    services.create_store(bob, "bob's")
    assert [s.name for s in services.stores_of(alice)] == ["manuals"]
    assert {e.file.filename for e in services.files_of(store)} == set(DOCUMENTS)
