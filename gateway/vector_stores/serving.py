"""/v1/vector_stores: the caller's knowledge bases, their files, file batches and search, over knowledge's services.

Everything is the caller's own: another user's store, file or batch is the same 404 as a missing one,
on every route, and a file id of someone else's is refused when added to one's own store. Ingestion is
queued (knowledge.tasks), never run here. A search embeds its query through the serving core (the
owner's ledger and limits count it) and, should the embedding model fail, ranks by full text alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import QuerySet

from accounts.models import User
from catalogue.models import LanguageModel
from core.db import db
from gateway import auth
from gateway.auth import Caller
from gateway.chat_completions.protocol import parse_body
from gateway.embeddings.inprocess import embed
from gateway.errors import GatewayError
from gateway.listing import listing, page
from gateway.vector_stores import protocol as p
from knowledge import services
from knowledge.chunking import ChunkingError, check_strategy
from knowledge.filters import FilterError
from knowledge.models import FileBatch, StoredFile, VectorStore, VectorStoreFile
from knowledge.search import MAX_QUERY_CHARS, SearchRefused, owned_store, search

T = TypeVar("T")
FILE_STATUSES = {status.value for status in VectorStoreFile.Status}


def not_found(what: str, object_id: str, param: str | None = None) -> GatewayError:
    return GatewayError(404, f"No {what} found with id '{object_id[:100]}'.", param=param, code="not_found")


def _store(user: User, store_id: str) -> VectorStore:
    try:
        return owned_store(user, store_id)
    except VectorStore.DoesNotExist:
        raise not_found("vector store", store_id) from None


def _file(user: User, file_id: str, param: str | None = None) -> StoredFile:
    try:
        return services.owned_file(user, file_id)
    except StoredFile.DoesNotExist:
        raise not_found("file", file_id, param) from None


def _entry(store: VectorStore, file_id: str) -> VectorStoreFile:
    entry = store.files.filter(file__public_id=file_id).first()
    if entry is None:
        raise not_found("file", file_id)
    return entry


def _batch(store: VectorStore, batch_id: str) -> FileBatch:
    batch = store.batches.filter(public_id=batch_id).first()
    if batch is None:
        raise not_found("file batch", batch_id)
    return batch


def _store_object(store: VectorStore) -> dict[str, Any]:
    store.refresh_from_db()
    return p.vector_store_object(store, services.file_counts(store.files.all()))


async def _embedding_model(caller: Caller, requested: str | None) -> LanguageModel | None:
    """The model a request names (404/403 as for any model, 400 if not for embeddings); for "" the
    configured default when the caller may use it; None: full-text search alone."""
    if requested == "":
        default = settings.KNOWLEDGE_EMBEDDING_MODEL
        try:
            model = await auth.get_model(default, caller) if default else None
        except GatewayError:
            return None
        return model if model is not None and model.kind == LanguageModel.Kind.EMBEDDING else None
    if requested is None:
        return None
    model = await auth.get_model(requested, caller)
    if model.kind != LanguageModel.Kind.EMBEDDING:
        raise GatewayError(
            400,
            f"The model '{requested[:100]}' is not an embedding model.",
            param="embedding_model",
            code="invalid_value",
        )
    return model


async def create_store(caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    request = parse_body(p.CreateVectorStoreRequest, body)
    model = await _embedding_model(caller, request.embedding_model)
    max_tokens, overlap = _chunking(request.chunking_strategy)

    def create() -> dict[str, Any]:
        files = [(_file(caller.user, file_id, "file_ids"), None) for file_id in request.file_ids or ()]
        store = services.create_store(
            caller.user,
            request.name or "",
            model,
            request.metadata,
            request.expires_after.days if request.expires_after else None,
        )
        if files:
            services.add_files(store, files, max_tokens, overlap)
        return _store_object(store)

    return await db(create)


def _chunking(strategy: p.ChunkingStrategy | None) -> tuple[int, int]:
    max_tokens, overlap = p.chunk_sizes(strategy)
    try:
        check_strategy(max_tokens, overlap)
    except ChunkingError as exc:
        raise GatewayError(400, str(exc), param="chunking_strategy", code="invalid_value") from None
    return max_tokens, overlap


async def list_stores(caller: Caller, query: Mapping[str, str]) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        owned = VectorStore.objects.filter(owner=caller.user).select_related("embedding_model")
        rows, more = page(owned, query, cursor="public_id", default_limit=20, max_limit=100)
        return listing([p.vector_store_object(s, services.file_counts(s.files.all())) for s in rows], more)

    return await db(read)


async def get_store(caller: Caller, store_id: str) -> dict[str, Any]:
    return await db(lambda: _store_object(_store(caller.user, store_id)))


async def update_store(caller: Caller, store_id: str, body: dict[str, Any]) -> dict[str, Any]:
    request = parse_body(p.UpdateVectorStoreRequest, body)
    changes: dict[str, Any] = {}
    if "embedding_model" in body:
        changes["embedding_model"] = await _embedding_model(caller, request.embedding_model)
    if "expires_after" in body:
        changes["expires_after_days"] = request.expires_after.days if request.expires_after else None

    def update() -> dict[str, Any]:
        store = _store(caller.user, store_id)
        services.update_store(store, name=request.name, metadata=request.metadata, **changes)
        return _store_object(store)

    return await db(update)


async def delete_store(caller: Caller, store_id: str) -> dict[str, Any]:
    await db(lambda: _store(caller.user, store_id).delete())
    return {"id": store_id, "object": "vector_store.deleted", "deleted": True}


async def add_file(caller: Caller, store_id: str, body: dict[str, Any]) -> dict[str, Any]:
    request = parse_body(p.CreateVectorStoreFileRequest, body)
    max_tokens, overlap = _chunking(request.chunking_strategy)

    def add() -> dict[str, Any]:
        store = _store(caller.user, store_id)
        file = _file(caller.user, request.file_id, "file_id")
        entry = services.add_file(store, file, request.attributes, max_tokens, overlap)
        return p.vector_store_file_object(entry, store.public_id, file.public_id)

    return await db(add)


def _file_objects(store: VectorStore, entries: QuerySet[VectorStoreFile], query: Mapping[str, str]) -> dict[str, Any]:
    wanted = query.get("filter")
    if wanted is not None:
        if wanted not in FILE_STATUSES:
            raise GatewayError(
                400, f"filter must be one of {', '.join(sorted(FILE_STATUSES))}.", param="filter", code="invalid_value"
            )
        entries = entries.filter(status=wanted)
    rows, more = page(entries.select_related("file"), query, cursor="file__public_id", default_limit=20, max_limit=100)
    return listing([p.vector_store_file_object(e, store.public_id, e.file.public_id) for e in rows], more)


async def list_files(caller: Caller, store_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        store = _store(caller.user, store_id)
        return _file_objects(store, store.files.all(), query)

    return await db(read)


async def get_file(caller: Caller, store_id: str, file_id: str) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        store = _store(caller.user, store_id)
        return p.vector_store_file_object(_entry(store, file_id), store.public_id, file_id)

    return await db(read)


async def update_file(caller: Caller, store_id: str, file_id: str, body: dict[str, Any]) -> dict[str, Any]:
    request = parse_body(p.UpdateVectorStoreFileAttributesRequest, body)

    def update() -> dict[str, Any]:
        store = _store(caller.user, store_id)
        entry = _entry(store, file_id)
        entry.attributes = request.attributes or {}
        entry.save(update_fields=["attributes"])
        return p.vector_store_file_object(entry, store.public_id, file_id)

    return await db(update)


async def remove_file(caller: Caller, store_id: str, file_id: str) -> dict[str, Any]:
    def remove() -> None:
        store = _store(caller.user, store_id)
        services.remove_file(store, _entry(store, file_id).file)

    await db(remove)
    return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}


async def create_batch(caller: Caller, store_id: str, body: dict[str, Any]) -> dict[str, Any]:
    request = parse_body(p.CreateVectorStoreFileBatchRequest, body)
    if (request.file_ids is None) == (request.files is None):
        raise GatewayError(400, "Give either 'file_ids' or 'files', not both.", param="file_ids", code="invalid_value")
    max_tokens, overlap = _chunking(request.chunking_strategy)
    wanted: list[tuple[str, dict[str, Any] | None]] = [(i, request.attributes) for i in request.file_ids or ()]
    wanted += [(f.file_id, f.attributes) for f in request.files or ()]

    def create() -> dict[str, Any]:
        store = _store(caller.user, store_id)
        files = [(_file(caller.user, file_id, "file_ids"), attributes) for file_id, attributes in wanted]
        batch = services.add_files(store, files, max_tokens, overlap)
        return p.file_batch_object(batch, store.public_id, services.file_counts(batch.files.all()))

    return await db(create)


def _on_batch(caller: Caller, store_id: str, batch_id: str, act: Callable[[VectorStore, FileBatch], T]) -> T:
    store = _store(caller.user, store_id)
    return act(store, _batch(store, batch_id))


async def get_batch(caller: Caller, store_id: str, batch_id: str) -> dict[str, Any]:
    def read(store: VectorStore, batch: FileBatch) -> dict[str, Any]:
        return p.file_batch_object(batch, store.public_id, services.file_counts(batch.files.all()))

    return await db(_on_batch, caller, store_id, batch_id, read)


async def cancel_batch(caller: Caller, store_id: str, batch_id: str) -> dict[str, Any]:
    def cancel(store: VectorStore, batch: FileBatch) -> dict[str, Any]:
        services.cancel_batch(batch)
        return p.file_batch_object(batch, store.public_id, services.file_counts(batch.files.all()))

    return await db(_on_batch, caller, store_id, batch_id, cancel)


async def list_batch_files(caller: Caller, store_id: str, batch_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    def read(store: VectorStore, batch: FileBatch) -> dict[str, Any]:
        return _file_objects(store, batch.files.all(), query)

    return await db(_on_batch, caller, store_id, batch_id, read)


async def search_store(caller: Caller, store_id: str, body: dict[str, Any]) -> dict[str, Any]:
    request = parse_body(p.VectorStoreSearchRequest, body)
    queries = request.queries()
    text = " ".join(queries)
    store = await db(_store, caller.user, store_id)
    vector = None
    if store.embedding_model is not None and store.dimensions is not None and 0 < len(text.strip()) <= MAX_QUERY_CHARS:
        try:
            (vector,) = await embed(caller.user, store.embedding_model, [text])
        except GatewayError:
            vector = None  # ranked by full text alone; the ledger keeps the failure
    threshold = request.ranking_options.score_threshold if request.ranking_options else 0.0

    def run() -> dict[str, Any]:
        try:
            hits = search(
                caller.user,
                store_id,
                text,
                max_results=request.max_num_results,
                filters=request.filters,
                mode="hybrid" if vector is not None else "text",
                query_vector=vector,
                score_threshold=threshold,
            )
        except FilterError as exc:
            raise GatewayError(400, f"Invalid filters: {exc}.", param="filters", code="invalid_value") from None
        except SearchRefused as exc:
            raise GatewayError(400, f"Invalid query: {exc}.", param="query", code="invalid_value") from None
        except VectorStore.DoesNotExist:
            raise not_found("vector store", store_id) from None
        services.touch(store)
        return p.search_results_page(queries, hits)

    return await db(run)
