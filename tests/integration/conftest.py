"""The real bundled model (SmolLM2 under llama.cpp), started once for the session.

Outside CI a machine without the `local` extra skips these tests; in CI (CI=true) they fail instead,
because a green CI run must mean the model really answered.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from catalogue.models import LanguageModel
from chatsite.local_model import LocalModelServer, LocalModelUnavailable, register, start_server
from tests.needs import missing


def unavailable(reason: str) -> None:
    missing(f"the local model is unavailable: {reason}")


@pytest.fixture(scope="session")
def local_model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModelServer]:
    try:
        server = start_server(tmp_path_factory.mktemp("local-model") / "server.log")
    except LocalModelUnavailable as exc:
        unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture
def local_model(local_model_server: LocalModelServer, transactional_db: None) -> LanguageModel:
    """Provider `local` and its model in the test database, as `make run` registers them."""
    return register(local_model_server.base_url, local_model_server.n_ctx, local_model_server.max_output_tokens)
