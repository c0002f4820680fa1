"""The bundled embedding model: its real server process, registered as the catalogue's `wordllama-256`,
called through the gateway like any deployment (the openai SDK, and knowledge's own embedder)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from accounts.keys import create_key
from catalogue.models import LanguageModel
from chatsite.local_embedding import LocalEmbeddingServer, register, start_server
from chatsite.local_embedding_server import DIMENSIONS, MODEL_ID
from gateway.embeddings.inprocess import embed_blocking
from knowledge import services
from knowledge.search import search
from tests.conftest import make_user
from tests.gateway.conftest import wait_for_usage
from tests.inprocess import InProcessApp

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEmbeddingServer]:
    started = start_server(Path(tmp_path_factory.mktemp("embedding")) / "local-embedding.log")
    yield started
    started.stop()


@pytest.fixture
def model(server: LocalEmbeddingServer, app: InProcessApp) -> LanguageModel:
    return register(server.base_url)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_it_registers_as_an_embedding_model_answering_unit_vectors_through_the_gateway(
    model: LanguageModel, app: InProcessApp
) -> None:
    import openai

    assert (model.public_id, model.kind) == (MODEL_ID, LanguageModel.Kind.EMBEDDING)
    _, secret = create_key(make_user("carol"), "k")
    client = openai.OpenAI(base_url=app.url + "/v1", api_key=secret, http_client=app.client(), max_retries=0)
    answer = client.embeddings.create(model=MODEL_ID, input=["Change the engine oil.", "Replace the lubricant."])
    vectors = [item.embedding for item in answer.data]
    assert [len(v) for v in vectors] == [DIMENSIONS, DIMENSIONS]
    assert all(math.isclose(cosine(v, v), 1.0, abs_tol=1e-3) for v in vectors)
    assert answer.usage.prompt_tokens > 0
    (row,) = wait_for_usage(1, model_public_id=MODEL_ID)
    assert row.status == 200 and row.prompt_tokens == answer.usage.prompt_tokens


def test_related_words_land_nearer_than_unrelated_ones(model: LanguageModel, app: InProcessApp) -> None:
    user = make_user("dave")
    car, automobile, poem = embed_blocking(user, model, ["car repair", "automobile mechanic", "a sonnet about love"])
    assert cosine(car, automobile) > cosine(car, poem)


def test_a_store_on_the_bundled_model_is_searched_by_meaning_and_the_owner_pays(
    model: LanguageModel, app: InProcessApp
) -> None:
    user = make_user("erin")
    store = services.create_store(user, "manuals", model)
    for name, text in {
        "oven.md": "Clean the oven door with vinegar.",
        "car.md": "The automobile needs new tyres.",
    }.items():
        entry = services.add_file(store, services.store_file(user, name, text.encode()))
        services.ingest(entry.pk)
    hits = search(user, store.public_id, "vehicle wheels", mode="vector")
    assert hits[0].filename == "car.md"
    rows = wait_for_usage(3, model_public_id=MODEL_ID)
    assert {row.user_id for row in rows} == {user.pk}
