"""Embeddings for our own code (knowledge bases), through the serving core like any /v1 call.

    vectors = await embed(user, model, ["passage one", "passage two"])   # GatewayError on a failure
    vectors = embed_blocking(user, model, texts)                         # knowledge.embedders' embedder

The owner pays: the call is reserved against their limits and budget, routed over the model's
deployments and written to the ledger as theirs (no key). `embed_blocking` is what knowledge's
synchronous code (the ingestion worker, a database thread) calls: it runs the call on one event loop
of its own thread, kept for the process, so the upstream's pooled connections and the ledger's
writer live as long as the process does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from accounts.models import User
from catalogue.models import LanguageModel
from gateway.auth import Caller
from gateway.embeddings.serving import EmbeddingServing
from gateway.errors import GatewayError
from knowledge.embedders import EmbeddingUnavailable
from usage.models import UsageRecord


class _KnownModel(EmbeddingServing):
    """The store's model, as knowledge found it: still checked against the owner's groups."""


async def embed(
    user: User, model: LanguageModel, texts: Sequence[str], source: str = UsageRecord.Source.API
) -> list[list[float]]:
    """One embedding per text, in order; GatewayError as the serving core raises it."""
    body = {"model": model.public_id, "input": list(texts), "encoding_format": "float"}
    answer = await _KnownModel(Caller(user, None, source), body, stream=False).answer()
    data: list[dict[str, Any]] = sorted(answer["data"], key=lambda item: item.get("index", 0))
    vectors = [item.get("embedding") for item in data]
    if len(vectors) != len(texts) or not all(isinstance(v, list) for v in vectors):
        raise GatewayError(502, f"The embedding model {model.public_id} answered malformed embeddings.")
    return vectors  # type: ignore[return-value]


_loop: list[asyncio.AbstractEventLoop] = []
_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    with _lock:
        if not _loop:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="embeddings", daemon=True).start()
            _loop.append(loop)
        return _loop[0]


def embed_blocking(user: User, model: LanguageModel, texts: Sequence[str]) -> list[list[float]]:
    """`embed` for synchronous code; EmbeddingUnavailable (the reason, fit for a file's last error) on a failure."""
    future = asyncio.run_coroutine_threadsafe(embed(user, model, texts), _background_loop())
    try:
        return future.result()
    except GatewayError as exc:
        raise EmbeddingUnavailable(f"The embedding model {model.public_id} failed: {exc.message}") from None
