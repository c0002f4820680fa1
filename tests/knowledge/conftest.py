"""Knowledge fixtures: a small deterministic embedder (used only in tests, registered as the product's would be)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence

import pytest

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from knowledge import embedders, services
from knowledge.models import VectorStore, VectorStoreFile
from tests.knowledge_worker import start_worker  # noqa: F401

DIMENSIONS = 256  # one of the HNSW-indexed dimensions
# A toy "meaning": words of one concept share a dimension; a word outside the table counts for nothing.
CONCEPTS = {
    "car": {"car", "automobile", "vehicle"},
    "oil": {"oil", "lubricant"},
    "maintain": {"servicing", "maintenance", "service"},
    "grade": {"grades", "grade"},
    "viscosity": {"viscosity"},
    "price": {"prices", "price"},
    "radio": {"radio", "speakers"},
    "error": {"error", "fault"},
}
DIMENSION_OF = {word: index for index, words in enumerate(CONCEPTS.values()) for word in words}
OTHER = DIMENSIONS - 1


def concept_vector(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        if word in DIMENSION_OF:
            vector[DIMENSION_OF[word]] += 1.0
    if not any(vector):
        vector[OTHER] = 1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def concept_embedder(user: User, model: LanguageModel, texts: Sequence[str]) -> list[list[float]]:
    return [concept_vector(text) for text in texts]


@pytest.fixture
def embedder() -> Iterator[None]:
    unregister = embedders.register_embedder(concept_embedder)
    yield
    unregister()


@pytest.fixture
def embedding_model(db: None) -> LanguageModel:
    provider = Provider.objects.create(name="embeddings", base_url="http://127.0.0.1:9/v1")
    return LanguageModel.objects.create(
        public_id="test-embedding", provider=provider, upstream_model="e", kind=LanguageModel.Kind.EMBEDDING
    )


def ingested(store: VectorStore, filename: str, text: str, **attributes: object) -> VectorStoreFile:
    """A file added to the store and ingested at once (the worker's part, run here)."""
    file = services.store_file(store.owner, filename, text.encode())
    entry = services.add_file(store, file, attributes=attributes)
    services.ingest(entry.pk)
    entry.refresh_from_db()
    return entry
