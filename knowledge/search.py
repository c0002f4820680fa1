"""Searching a user's vector store: vector similarity and full-text ranking fused by reciprocal rank fusion.

    hits = search(user, "vs_...", "how do I change the oil", max_results=10, filters={...})
    hits = search_stores(user, ["vs_...", "vs_..."], "oil change")   # a file_search tool's call

Owner-only: another user's store is `VectorStore.DoesNotExist`, as a missing one is. The query is bounded
in length, and the search's statements in time (SEARCH_TIMEOUT_MS, PostgreSQL's statement_timeout).
A store without an embedding model (or with no embedder registered) is searched by full text alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Cast
from pgvector.django import CosineDistance, VectorField

from accounts.models import User
from knowledge import embedders
from knowledge.filters import to_q
from knowledge.models import INDEXED_DIMENSIONS, TEXT_SEARCH_CONFIG, Chunk, VectorStore, VectorStoreFile

MAX_QUERY_CHARS = 4000
MAX_RESULTS = 50
MAX_QUERY_WORDS = 64
WORD = re.compile(r"\w+")
# How many of each ranking's best enter the fusion, and RRF's constant (60, as in Cormack et al.).
CANDIDATES = 100
RRF_K = 60
SEARCH_TIMEOUT_MS = 5000

Mode = Literal["hybrid", "vector", "text"]


class SearchRefused(ValueError):
    """A query out of bounds; the message says which."""


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    file_id: str
    filename: str
    text: str
    score: float
    page: int | None
    section: str
    attributes: dict[str, Any]


def owned_store(user: User, store_id: str) -> VectorStore:
    """The user's store of that id; VectorStore.DoesNotExist for anyone else's."""
    return VectorStore.objects.select_related("embedding_model").get(public_id=store_id, owner=user)


def search(
    user: User,
    store_id: str,
    query: str,
    *,
    max_results: int = 10,
    filters: dict[str, Any] | None = None,
    mode: Mode = "hybrid",
    query_vector: list[float] | None = None,
    score_threshold: float = 0.0,
) -> list[Hit]:
    """The best passages, scored 0..1 (1: first in every ranking). `query_vector`: the query's embedding when
    the caller has it already (else it is asked of the registered embedder)."""
    store = owned_store(user, store_id)
    query = query.strip()
    if not query or len(query) > MAX_QUERY_CHARS:
        raise SearchRefused(f"query must be 1 to {MAX_QUERY_CHARS} characters")
    if not 1 <= max_results <= MAX_RESULTS:
        raise SearchRefused(f"max_num_results must be between 1 and {MAX_RESULTS}")
    files = VectorStoreFile.objects.filter(store=store, status=VectorStoreFile.Status.COMPLETED)
    if filters is not None:
        files = files.filter(to_q(filters))
    chunks = Chunk.objects.filter(store=store, file_id__in=files.values("file_id"))
    if (
        mode == "text"
        or store.dimensions is None
        or (query_vector is not None and len(query_vector) != store.dimensions)
    ):
        query_vector = None
    elif query_vector is None:
        query_vector = _query_vector(user, store, query)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(SEARCH_TIMEOUT_MS)])
        # An HNSW scan yields at most ef_search rows (pgvector's default 40): let it give every candidate.
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(CANDIDATES)])
        rankings: list[list[int]] = []
        if query_vector is not None:
            rankings.append(_by_vector(chunks, store, query_vector))
        if mode != "vector":
            rankings.append(_by_text(chunks, query))
        best = len(rankings) / (RRF_K + 1)  # the score of a passage first in every ranking
        fused = [(pk, score / best) for pk, score in fuse(rankings) if score / best >= score_threshold][:max_results]
        found = {c.pk: c for c in Chunk.objects.filter(pk__in=[pk for pk, _ in fused]).select_related("file")}
        attributes = dict(
            files.filter(file_id__in={c.file_id for c in found.values()}).values_list("file_id", "attributes")
        )
    return [_hit(found[pk], score, attributes.get(found[pk].file_id) or {}) for pk, score in fused]


def search_stores(
    user: User,
    store_ids: Sequence[str],
    query: str,
    *,
    max_results: int = 10,
    filters: dict[str, Any] | None = None,
    score_threshold: float = 0.0,
) -> list[Hit]:
    """The best passages of several of the user's stores (a file_search tool's call): each store searched
    with its own embedding model, the hits merged by their 0..1 scores. VectorStore.DoesNotExist if any
    store is not the user's, before any is searched."""
    stores = [owned_store(user, store_id) for store_id in dict.fromkeys(store_ids)]
    hits: list[Hit] = []
    for store in stores:
        hits += search(
            user,
            store.public_id,
            query,
            max_results=max_results,
            filters=filters,
            score_threshold=score_threshold,
        )
    return sorted(hits, key=lambda hit: -hit.score)[:max_results]


def _query_vector(user: User, store: VectorStore, query: str) -> list[float] | None:
    if store.embedding_model is None or not embedders.available():
        return None
    return embedders.embed(user, store.embedding_model, [query])[0]


def by_vector_query(chunks: QuerySet[Chunk], dimensions: int, vector: list[float]) -> QuerySet[Chunk]:
    column: Any = F("embedding")
    if dimensions in INDEXED_DIMENSIONS:
        # The form of the partial HNSW index's expression, so the planner uses it.
        column = Cast("embedding", VectorField(dimensions=dimensions))
    return (
        chunks.filter(dimensions=dimensions, embedding__isnull=False)
        .annotate(distance=CosineDistance(column, vector))
        # The distance alone: a second sort key would keep the HNSW index from giving the order.
        .order_by("distance")
    )


def _by_vector(chunks: QuerySet[Chunk], store: VectorStore, vector: list[float]) -> list[int]:
    assert store.dimensions is not None
    ranked = by_vector_query(chunks, store.dimensions, vector)
    return list(ranked.values_list("pk", flat=True)[:CANDIDATES])


def _by_text(chunks: QuerySet[Chunk], query: str) -> list[int]:
    # Any of the query's words (websearch_to_tsquery would ask for all of them); the rank sorts by how many.
    # Only word characters reach the tsquery syntax, so no operator comes from the user.
    words = WORD.findall(query)[:MAX_QUERY_WORDS]
    if not words:
        return []
    any_word = SearchQuery(" | ".join(words), search_type="raw", config=TEXT_SEARCH_CONFIG)
    ranked = (
        chunks.filter(search_vector=any_word)
        .annotate(rank=SearchRank(F("search_vector"), any_word))
        .order_by("-rank", "pk")
    )
    return list(ranked.values_list("pk", flat=True)[:CANDIDATES])


def fuse(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: each id scores the sum of 1 / (k + rank) over the rankings that hold it."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, pk in enumerate(ranking, start=1):
            scores[pk] = scores.get(pk, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def _hit(chunk: Chunk, score: float, attributes: dict[str, Any]) -> Hit:
    return Hit(
        chunk_id=chunk.pk,
        file_id=chunk.file.public_id,
        filename=chunk.file.filename,
        text=chunk.text,
        score=score,
        page=chunk.page,
        section=chunk.section,
        attributes=attributes,
    )
