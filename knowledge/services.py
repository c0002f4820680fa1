"""Knowledge bases' services: files kept, stores made, files added to stores and ingested.

Adding a file to a store only records it (`in_progress`) and queues its ingestion (knowledge.tasks):
extraction, chunking and embedding never run inside a request. `ingest` is what the worker runs; it is
idempotent (a file's chunks are replaced whole), so a job retried after a crashed worker redoes it cleanly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction

from accounts.models import User
from catalogue.models import LanguageModel
from knowledge import embedders
from knowledge.chunking import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP_TOKENS, ChunkingError, check_strategy, chunk_document
from knowledge.extract import ExtractionFailed, content_type, extract
from knowledge.models import Chunk, StoredFile, VectorStore, VectorStoreFile

EMBED_BATCH = 64
# What the queue calls to start a file's ingestion; knowledge.tasks sets it when the queue's app is ready.
_enqueue: list[Callable[[int], None]] = []


def register_enqueue(enqueue: Callable[[int], None]) -> None:
    _enqueue[:] = [enqueue]


def create_store(
    user: User, name: str = "", embedding_model: LanguageModel | None = None, metadata: dict[str, Any] | None = None
) -> VectorStore:
    if embedding_model is not None and embedding_model.kind != LanguageModel.Kind.EMBEDDING:
        raise ValueError(f"{embedding_model.public_id} is not an embedding model")
    return VectorStore.objects.create(owner=user, name=name, embedding_model=embedding_model, metadata=metadata or {})


def store_file(user: User, filename: str, data: bytes, purpose: str = StoredFile.Purpose.ASSISTANTS) -> StoredFile:
    """Keeps an upload; ExtractionFailed if its bytes are nothing we can search."""
    kind = content_type(filename, data)
    stored = StoredFile(
        owner=user,
        filename=filename,
        bytes=len(data),
        purpose=purpose,
        content_type=kind,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    stored.content.save(filename, ContentFile(data), save=False)
    stored.save()
    return stored


def add_file(
    store: VectorStore,
    file: StoredFile,
    attributes: dict[str, Any] | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
) -> VectorStoreFile:
    """Adds one of the store owner's files to the store and queues its ingestion; DoesNotExist for another's."""
    if file.owner_id != store.owner_id:
        raise StoredFile.DoesNotExist("No such file.")
    check_strategy(max_tokens, overlap_tokens)
    strategy = {
        "type": "static",
        "static": {"max_chunk_size_tokens": max_tokens, "chunk_overlap_tokens": overlap_tokens},
    }
    with transaction.atomic():
        entry, _ = VectorStoreFile.objects.update_or_create(
            store=store,
            file=file,
            defaults={
                "status": VectorStoreFile.Status.IN_PROGRESS,
                "last_error": None,
                "attributes": attributes or {},
                "chunking_strategy": strategy,
            },
        )
        if _enqueue:
            enqueue = _enqueue[0]
            transaction.on_commit(lambda: enqueue(entry.pk))
    return entry


def ingest(entry_id: int) -> None:
    """Extracts, chunks, embeds and stores one file of a store; records `failed` with the reason if it cannot."""
    entry = (
        VectorStoreFile.objects.select_related("store__embedding_model", "store__owner", "file")
        .filter(pk=entry_id)
        .first()
    )
    if entry is None:  # removed from its store before its turn came
        return
    try:
        with entry.file.content.open("rb") as handle:
            data = handle.read()
        document = extract(entry.file.content_type, data)
        static = entry.chunking_strategy.get("static", {})
        spans = chunk_document(
            document,
            static.get("max_chunk_size_tokens", DEFAULT_MAX_TOKENS),
            static.get("chunk_overlap_tokens", DEFAULT_OVERLAP_TOKENS),
        )
        vectors = _embeddings(entry.store, [span.text for span in spans])
    except (ExtractionFailed, ChunkingError, embedders.EmbeddingUnavailable, OSError) as exc:
        code = getattr(exc, "code", "server_error")
        VectorStoreFile.objects.filter(pk=entry.pk).update(
            status=VectorStoreFile.Status.FAILED, last_error={"code": code, "message": str(exc)}
        )
        return
    dimensions = len(vectors[0]) if vectors and vectors[0] is not None else None
    chunks = [
        Chunk(
            store=entry.store,
            file=entry.file,
            position=position,
            text=span.text,
            page=span.page,
            section=span.section[:500],
            char_start=span.start,
            char_end=span.end,
            tokens=span.tokens,
            dimensions=dimensions,
            embedding=vector,
        )
        for position, (span, vector) in enumerate(zip(spans, vectors, strict=True))
    ]
    with transaction.atomic():
        Chunk.objects.filter(store=entry.store, file=entry.file).delete()
        Chunk.objects.bulk_create(chunks, batch_size=500)
        if dimensions is not None and entry.store.dimensions is None:
            VectorStore.objects.filter(pk=entry.store.pk).update(dimensions=dimensions)
        VectorStoreFile.objects.filter(pk=entry.pk).update(
            status=VectorStoreFile.Status.COMPLETED, last_error=None, usage_bytes=sum(len(c.text) for c in chunks)
        )


def _embeddings(store: VectorStore, texts: list[str]) -> list[list[float] | None]:
    """The texts' embeddings, or None each when the store is searched by full text alone."""
    model = store.embedding_model
    if model is None or not texts:
        return [None] * len(texts)
    vectors: list[list[float] | None] = []
    for start in range(0, len(texts), EMBED_BATCH):
        vectors.extend(embedders.embed(store.owner, model, texts[start : start + EMBED_BATCH]))
    if store.dimensions is not None and any(v is not None and len(v) != store.dimensions for v in vectors):
        raise embedders.EmbeddingUnavailable(
            f"The embedding model answered {len(vectors[0] or [])} dimensions; this store holds {store.dimensions}."
        )
    return vectors
