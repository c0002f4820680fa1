"""Knowledge bases' services: files kept, stores made, files added to stores and ingested.

Adding a file to a store only records it (`in_progress`) and queues its ingestion (knowledge.tasks):
extraction, chunking and embedding never run inside a request. `ingest` is what the worker runs; it is
idempotent (a file's chunks are replaced whole), so a job retried after a crashed worker redoes it cleanly.

What /v1/files, /v1/vector_stores and the Knowledge page call (synchronous: from async code, on a
database thread), everything owner-only (another user's id is DoesNotExist, as a missing one):

    stored = store_file(user, "manual.pdf", data)        # ExtractionFailed, quotas.QuotaExceeded
    file = owned_file(user, "file-...")                  # StoredFile.DoesNotExist
    delete_file(user, "file-...")                        # from every store too
    stores = stores_of(user)                             # newest first, with their embedding model
    store = create_store(user, "Manuals", embedding_model=None)   # None: full-text search only
    entries = files_of(store)                            # each with its file, status, last_error, usage
    store = owned_store(user, "vs_...")                  # VectorStore.DoesNotExist
    update_store(store, name=..., embedding_model=...)   # a new embedding model re-embeds every file
    delete_store(user, "vs_...")
    entry = add_file(store, file, attributes={...})      # queued, `in_progress`
    batch = add_files(store, [file, ...])                # a FileBatch; cancel_batch(batch)
    remove_file(store, file)
    counts = file_counts(store.files.all())              # {"in_progress": .., "completed": .., ...}
    quotas.usage(user)                                   # bytes and files kept, and the quotas
"""

from __future__ import annotations

import enum
import gc
import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import User
from catalogue.models import LanguageModel
from knowledge import embedders, quotas
from knowledge.chunking import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP_TOKENS, ChunkingError, check_strategy, chunk_document
from knowledge.extract import ExtractionFailed, content_type, extract
from knowledge.models import Chunk, FileBatch, StoredFile, VectorStore, VectorStoreFile
from knowledge.search import owned_store

EMBED_BATCH = 64


class Unchanged(enum.Enum):
    """update_store's default: leave it as it is (None means none)."""

    UNCHANGED = 0


UNCHANGED = Unchanged.UNCHANGED
# What the queue calls to start a file's ingestion; knowledge.tasks sets it when the queue's app is ready.
_enqueue: list[Callable[[int], None]] = []


def register_enqueue(enqueue: Callable[[int], None]) -> None:
    _enqueue[:] = [enqueue]


def create_store(
    user: User,
    name: str = "",
    embedding_model: LanguageModel | None = None,
    metadata: dict[str, Any] | None = None,
    expires_after_days: int | None = None,
) -> VectorStore:
    _check_embedding_model(embedding_model)
    store = VectorStore(
        owner=user,
        name=name,
        embedding_model=embedding_model,
        metadata=metadata or {},
        expires_after_days=expires_after_days,
    )
    store.expires_at = _expiry(store)
    store.save()
    return store


def store_file(user: User, filename: str, data: bytes, purpose: str = StoredFile.Purpose.ASSISTANTS) -> StoredFile:
    """Keeps an upload; ExtractionFailed if its bytes are nothing we can search, QuotaExceeded past a quota."""
    kind = content_type(filename, data)
    stored = StoredFile(
        owner=user,
        filename=filename,
        bytes=len(data),
        purpose=purpose,
        content_type=kind,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    with transaction.atomic():
        quotas.check_upload(user, len(data))
        stored.content.save(filename, ContentFile(data), save=False)
        stored.save()
    return stored


def stores_of(user: User) -> QuerySet[VectorStore]:
    """The user's stores, newest first."""
    return VectorStore.objects.filter(owner=user).select_related("embedding_model").order_by("-id")


def files_of(store: VectorStore) -> QuerySet[VectorStoreFile]:
    """A store's files, newest first, each with its StoredFile (name, bytes) and where its ingestion stands."""
    return store.files.select_related("file").order_by("-id")


def owned_file(user: User, file_id: str) -> StoredFile:
    """The user's file of that id; StoredFile.DoesNotExist for anyone else's."""
    return StoredFile.objects.get(public_id=file_id, owner=user)


def delete_file(user: User, file_id: str) -> None:
    """Deletes the user's file, its chunks and its place in every store; StoredFile.DoesNotExist if not theirs."""
    with transaction.atomic():
        stored = StoredFile.objects.select_for_update().get(public_id=file_id, owner=user)
        stores = list(VectorStore.objects.filter(files__file=stored))
        content = stored.content
        stored.delete()
        for store in stores:
            refresh_usage(store)
        transaction.on_commit(lambda: content.delete(save=False))


def delete_store(user: User, store_id: str) -> None:
    """Deletes the user's store and its chunks (its files stay); VectorStore.DoesNotExist if not theirs."""
    owned_store(user, store_id).delete()


def update_store(
    store: VectorStore,
    *,
    name: str | None = None,
    metadata: dict[str, Any] | None = None,
    expires_after_days: int | Unchanged | None = UNCHANGED,
    embedding_model: LanguageModel | Unchanged | None = UNCHANGED,
) -> VectorStore:
    """Changes what is given. A new embedding model re-embeds every file of the store:
    each goes back `in_progress` on the queue, searched by full text meanwhile."""
    if name is not None:
        store.name = name
    if metadata is not None:
        store.metadata = metadata
    if expires_after_days is not UNCHANGED:
        store.expires_after_days = expires_after_days
    reembed = False
    if embedding_model is not UNCHANGED and getattr(embedding_model, "pk", None) != store.embedding_model_id:
        _check_embedding_model(embedding_model)
        store.embedding_model = embedding_model
        store.dimensions = None
        reembed = True
    store.expires_at = _expiry(store)
    with transaction.atomic():
        store.save()
        if reembed:
            entries = list(store.files.exclude(status=VectorStoreFile.Status.CANCELLED).values_list("pk", flat=True))
            store.files.filter(pk__in=entries).update(status=VectorStoreFile.Status.IN_PROGRESS, last_error=None)
            for entry_id in entries:
                _queue(entry_id)
    return store


def touch(store: VectorStore) -> None:
    """Marks the store used now (a search): its expiry counts from here."""
    store.last_active_at = timezone.now()
    store.expires_at = _expiry(store)
    VectorStore.objects.filter(pk=store.pk).update(last_active_at=store.last_active_at, expires_at=store.expires_at)


def _expiry(store: VectorStore) -> datetime | None:
    if store.expires_after_days is None:
        return None
    return store.last_active_at + timedelta(days=store.expires_after_days)


def _check_embedding_model(model: LanguageModel | None) -> None:
    if model is not None and model.kind != LanguageModel.Kind.EMBEDDING:
        raise ValueError(f"{model.public_id} is not an embedding model")


def _queue(entry_id: int) -> None:
    if _enqueue:
        enqueue = _enqueue[0]
        transaction.on_commit(lambda: enqueue(entry_id))


def add_files(
    store: VectorStore,
    files: Sequence[tuple[StoredFile, dict[str, Any] | None]],
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
) -> FileBatch:
    """Adds (file, attributes) pairs to the store as one batch; DoesNotExist if any file is another user's."""
    with transaction.atomic():
        batch = FileBatch.objects.create(store=store)
        for file, attributes in files:
            add_file(store, file, attributes, max_tokens, overlap_tokens, batch=batch)
    return batch


def cancel_batch(batch: FileBatch) -> FileBatch:
    """Cancels the batch's files not yet ingested (the worker skips them); those done stay."""
    with transaction.atomic():
        batch.cancelled = True
        batch.save(update_fields=["cancelled"])
        batch.files.filter(status=VectorStoreFile.Status.IN_PROGRESS).update(status=VectorStoreFile.Status.CANCELLED)
    return batch


def remove_file(store: VectorStore, file: StoredFile) -> None:
    """Takes the file out of the store (its chunks too); the file itself stays. DoesNotExist if it is not in it."""
    with transaction.atomic():
        VectorStoreFile.objects.get(store=store, file=file).delete()
        Chunk.objects.filter(store=store, file=file).delete()
        refresh_usage(store)


def file_counts(entries: QuerySet[VectorStoreFile]) -> dict[str, int]:
    """OpenAI's file_counts of these store files."""
    statuses = VectorStoreFile.Status
    counted = entries.aggregate(
        total=Count("id"), **{status.value: Count("id", filter=Q(status=status.value)) for status in statuses}
    )
    return {status.value: counted[status.value] for status in statuses} | {"total": counted["total"]}


def refresh_usage(store: VectorStore) -> None:
    """The store's usage_bytes: its ingested files' chunks' text."""
    used = store.files.aggregate(total=Sum("usage_bytes"))["total"] or 0
    VectorStore.objects.filter(pk=store.pk).update(usage_bytes=used)


def add_file(
    store: VectorStore,
    file: StoredFile,
    attributes: dict[str, Any] | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
    batch: FileBatch | None = None,
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
                "batch": batch,
            },
        )
        _queue(entry.pk)
    return entry


def ingest(entry_id: int) -> None:
    """Extracts, chunks, embeds and stores one file of a store; records `failed` with the reason if it cannot."""
    try:
        _ingest(entry_id)
    finally:
        # A PDF reader keeps its file's bytes (and the streams it read) in reference cycles, which only a full
        # collection frees: without one here a worker grew by twice each file's size (bench/ingest_memory.py).
        gc.collect()


def _ingest(entry_id: int) -> None:
    entry = (
        VectorStoreFile.objects.select_related("store__embedding_model", "store__owner", "file")
        .filter(pk=entry_id)
        .first()
    )
    if entry is None or entry.status == VectorStoreFile.Status.CANCELLED:  # removed or cancelled before its turn
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
        # An OSError names the storage's paths, which are the server's business, not the file owner's.
        message = "The file's content could not be read from storage." if isinstance(exc, OSError) else str(exc)
        VectorStoreFile.objects.filter(pk=entry.pk).update(
            status=VectorStoreFile.Status.FAILED, last_error={"code": code, "message": message}
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
            status=VectorStoreFile.Status.COMPLETED,
            last_error=None,
            usage_bytes=sum(len(c.text.encode()) for c in chunks),
        )
        refresh_usage(entry.store)


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
