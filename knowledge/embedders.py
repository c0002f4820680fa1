"""How texts become embeddings: a function a higher app registers (it calls the catalogue's embedding model
through the gateway's routing, so the ledger, limits and budgets count it), looked up here.

    register_embedder(embed_through_gateway)  # in that app's AppConfig.ready()
    vectors = embed(user, model, ["passage one", "passage two"])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from accounts.models import User
from catalogue.models import LanguageModel

Embedder = Callable[[User, LanguageModel, Sequence[str]], list[list[float]]]

_embedder: list[Embedder] = []


class EmbeddingUnavailable(Exception):
    """No embedder is registered, or it failed: the message says why, fit to show as a file's last error."""


def register_embedder(embedder: Embedder) -> Callable[[], None]:
    """Makes `embedder` the one used; returns how to take it back."""
    _embedder.insert(0, embedder)
    return lambda: _embedder.remove(embedder)


def available() -> bool:
    return bool(_embedder)


def embed(user: User, model: LanguageModel, texts: Sequence[str]) -> list[list[float]]:
    if not _embedder:
        raise EmbeddingUnavailable("No embedding service is configured.")
    vectors = _embedder[0](user, model, texts)
    if len(vectors) != len(texts) or len({len(vector) for vector in vectors}) > 1:
        raise EmbeddingUnavailable(f"The embedding model {model.public_id} answered with malformed embeddings.")
    return vectors
