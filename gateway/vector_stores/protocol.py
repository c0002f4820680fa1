"""OpenAI's vector store requests as pydantic models, and our objects in OpenAI's answers' shapes.

Requests follow the spec's field order and forbid fields it does not list (its `additionalProperties:
false`), but ours, marked. Objects are built from knowledge's rows by the functions below.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from core.clock import clock
from knowledge.chunking import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP_TOKENS
from knowledge.models import FileBatch, VectorStore, VectorStoreFile
from knowledge.search import MAX_RESULTS, Hit

Metadata = Annotated[
    dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]], Field(max_length=16)
]
AttributeValue = Annotated[StrictStr, Field(max_length=512)] | StrictBool | StrictInt | StrictFloat
Attributes = Annotated[dict[Annotated[str, Field(max_length=64)], AttributeValue], Field(max_length=16)]
MAX_BATCH_FILES = 2000


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpiresAfter(_Request):
    """VectorStoreExpirationAfter."""

    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


class StaticChunking(_Request):
    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0)


class AutoChunkingStrategy(_Request):
    type: Literal["auto"]


class StaticChunkingStrategy(_Request):
    type: Literal["static"]
    static: StaticChunking


ChunkingStrategy = Annotated[AutoChunkingStrategy | StaticChunkingStrategy, Field(discriminator="type")]


def chunk_sizes(strategy: ChunkingStrategy | None) -> tuple[int, int]:
    """(max tokens, overlap tokens) of a request's strategy; "auto" is OpenAI's 800 and 400."""
    if isinstance(strategy, StaticChunkingStrategy):
        return strategy.static.max_chunk_size_tokens, strategy.static.chunk_overlap_tokens
    return DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP_TOKENS


class CreateVectorStoreRequest(_Request):
    """CreateVectorStoreRequest."""

    file_ids: list[str] | None = Field(default=None, max_length=500)
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    expires_after: ExpiresAfter | None = None
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata | None = None
    # Ours: the catalogue's embedding model the store uses (KNOWLEDGE_EMBEDDING_MODEL when absent; null:
    # full-text search alone).
    embedding_model: str | None = Field(default="", max_length=200)


class UpdateVectorStoreRequest(_Request):
    """UpdateVectorStoreRequest."""

    name: str | None = Field(default=None, max_length=256)
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None
    # Ours: a new embedding model re-embeds every file of the store.
    embedding_model: str | None = Field(default="", max_length=200)


class CreateVectorStoreFileRequest(_Request):
    """CreateVectorStoreFileRequest."""

    file_id: str = Field(min_length=1, max_length=100)
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes | None = None


class CreateVectorStoreFileBatchRequest(_Request):
    """CreateVectorStoreFileBatchRequest (file_ids or files, not both)."""

    file_ids: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, min_length=1, max_length=MAX_BATCH_FILES
    )
    files: list[CreateVectorStoreFileRequest] | None = Field(default=None, min_length=1, max_length=MAX_BATCH_FILES)
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes | None = None


class UpdateVectorStoreFileAttributesRequest(_Request):
    """UpdateVectorStoreFileAttributesRequest."""

    attributes: Attributes | None


class RankingOptions(_Request):
    ranker: Literal["none", "auto", "default-2024-11-15"] = "auto"
    score_threshold: float = Field(default=0.0, ge=0, le=1)


class VectorStoreSearchRequest(_Request):
    """VectorStoreSearchRequest."""

    query: str | Annotated[list[str], Field(min_length=1, max_length=16)]
    rewrite_query: bool = False
    max_num_results: int = Field(default=10, ge=1, le=MAX_RESULTS)
    filters: dict[str, Any] | None = None  # knowledge.filters checks its shape
    ranking_options: RankingOptions | None = None

    def queries(self) -> list[str]:
        return [self.query] if isinstance(self.query, str) else list(self.query)


# --- objects -----------------------------------------------------------------------------------------


def _time(value: Any) -> int | None:
    return int(value.timestamp()) if value is not None else None


def vector_store_object(store: VectorStore, counts: dict[str, int]) -> dict[str, Any]:
    expired = store.expires_at is not None and store.expires_at <= clock().now()
    busy = counts.get("in_progress", 0) > 0
    status = "expired" if expired else "in_progress" if busy else "completed"
    found: dict[str, Any] = {
        "id": store.public_id,
        "object": "vector_store",
        "created_at": _time(store.created_at),
        "name": store.name,
        "usage_bytes": store.usage_bytes,
        "file_counts": counts,
        "status": status,
        "expires_after": (
            {"anchor": "last_active_at", "days": store.expires_after_days} if store.expires_after_days else None
        ),
        "expires_at": _time(store.expires_at),
        "last_active_at": _time(store.last_active_at),
        "metadata": store.metadata or {},
        # Ours: what the store is searched with.
        "embedding_model": store.embedding_model.public_id if store.embedding_model else None,
    }
    if found["expires_after"] is None:
        del found["expires_after"]
    return found


# OpenAI's last_error codes; ours are finer (knowledge.extract), kept in the message.
_ERROR_CODES = {"server_error", "unsupported_file", "invalid_file"}


def vector_store_file_object(entry: VectorStoreFile, store_id: str, file_id: str) -> dict[str, Any]:
    error = entry.last_error
    if error is not None:
        code = error.get("code")
        error = {"code": code if code in _ERROR_CODES else "invalid_file", "message": error.get("message", "")}
    return {
        "id": file_id,
        "object": "vector_store.file",
        "usage_bytes": entry.usage_bytes,
        "created_at": _time(entry.created_at),
        "vector_store_id": store_id,
        "status": entry.status,
        "last_error": error,
        "chunking_strategy": entry.chunking_strategy or None,
        "attributes": entry.attributes or {},
    }


def file_batch_object(batch: FileBatch, store_id: str, counts: dict[str, int]) -> dict[str, Any]:
    if batch.cancelled:
        status = "cancelled"
    elif counts.get("in_progress", 0):
        status = "in_progress"
    elif counts.get("failed", 0) and not counts.get("completed", 0):
        status = "failed"
    else:
        status = "completed"
    return {
        "id": batch.public_id,
        "object": "vector_store.files_batch",
        "created_at": _time(batch.created_at),
        "vector_store_id": store_id,
        "status": status,
        "file_counts": counts,
    }


def search_results_page(queries: list[str], hits: list[Hit]) -> dict[str, Any]:
    return {
        "object": "vector_store.search_results.page",
        "search_query": queries,
        "data": [
            {
                "file_id": hit.file_id,
                "filename": hit.filename,
                "score": round(min(max(hit.score, 0.0), 1.0), 6),
                "attributes": hit.attributes,
                "content": [{"type": "text", "text": hit.text}],
            }
            for hit in hits
        ],
        "has_more": False,
        "next_page": None,
    }
