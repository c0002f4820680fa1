"""Knowledge bases: stored files, vector stores (OpenAI's names), the files in each and their chunks.

A chunk's embedding is a `vector` column without a fixed dimension, so one table holds every store
whatever its embedding model; pgvector's HNSW index needs one dimension, so the indexes are partial
expression indexes, one per common dimension (`embedding::vector(N) WHERE dimensions = N`, see the
migration). A store of another dimension is still searched exactly, by a sequential scan of its chunks.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.files.storage import Storage, storages
from django.db import models
from django.utils import timezone
from pgvector.django import VectorField

from catalogue.models import LanguageModel

# The dimensions an HNSW index exists for (pgvector indexes at most 2,000 dimensions of `vector`).
INDEXED_DIMENSIONS = (256, 384, 512, 768, 1024, 1536)
# English stemming: "install" finds "installing"; words of other languages still match as written.
TEXT_SEARCH_CONFIG = "english"


def _knowledge_storage() -> Storage:
    """The storage settings.STORAGES names "knowledge" (read when the models load, after the settings)."""
    return storages["knowledge"]


def _public_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def file_id() -> str:
    return _public_id("file-")


def vector_store_id() -> str:
    return _public_id("vs_")


def file_batch_id() -> str:
    return _public_id("vsfb_")


class StoredFile(models.Model):
    """A file a user uploaded to keep (OpenAI's Files), its content in the "knowledge" storage."""

    class Purpose(models.TextChoices):
        ASSISTANTS = "assistants"
        USER_DATA = "user_data"

    public_id = models.CharField(max_length=40, unique=True, default=file_id)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="stored_files")
    filename = models.CharField(max_length=255)
    bytes = models.PositiveBigIntegerField()
    purpose = models.CharField(max_length=32, choices=Purpose.choices, default=Purpose.ASSISTANTS)
    # What the content is, sniffed from its bytes (never the name or the browser's word).
    content_type = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64)
    content = models.FileField(storage=_knowledge_storage, upload_to="%Y/%m/", max_length=300)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["owner", "sha256"])]

    def __str__(self) -> str:
        return self.filename


class VectorStore(models.Model):
    """A knowledge base: files chunked and embedded with one embedding model, searched together."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"
        EXPIRED = "expired"

    public_id = models.CharField(max_length=40, unique=True, default=vector_store_id)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vector_stores")
    name = models.CharField(max_length=256, blank=True)
    # None: full-text search only, until an embedding model is chosen.
    embedding_model = models.ForeignKey(
        LanguageModel,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        limit_choices_to={"kind": LanguageModel.Kind.EMBEDDING},
    )
    dimensions = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETED)
    usage_bytes = models.PositiveBigIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    # OpenAI's expires_after: so many days after it was last active (None: never).
    expires_after_days = models.PositiveIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_active_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name or self.public_id


class FileBatch(models.Model):
    """Files added to a store together (OpenAI's file batches); its status is its files' (but `cancelled`)."""

    public_id = models.CharField(max_length=40, unique=True, default=file_batch_id)
    store = models.ForeignKey(VectorStore, on_delete=models.CASCADE, related_name="batches")
    cancelled = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.public_id


class VectorStoreFile(models.Model):
    """A file in a store, with where its ingestion stands."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    store = models.ForeignKey(VectorStore, on_delete=models.CASCADE, related_name="files")
    file = models.ForeignKey(StoredFile, on_delete=models.CASCADE, related_name="in_stores")
    batch = models.ForeignKey(FileBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="files")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    last_error = models.JSONField(null=True, blank=True)  # {"code": ..., "message": ...} when failed
    attributes = models.JSONField(default=dict, blank=True)
    chunking_strategy = models.JSONField(default=dict, blank=True)
    usage_bytes = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["store", "file"], name="knowledge_one_file_per_store")]

    def __str__(self) -> str:
        return f"{self.file} in {self.store}"


class Chunk(models.Model):
    """A passage of a file in a store: its text, where it came from, its embedding and its full-text vector."""

    store = models.ForeignKey(VectorStore, on_delete=models.CASCADE, related_name="chunks")
    file = models.ForeignKey(StoredFile, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()  # its order in the file
    text = models.TextField()
    page = models.PositiveIntegerField(null=True, blank=True)  # 1-based, for paged documents
    section = models.CharField(max_length=500, blank=True)  # the headings above it, "A > B"
    char_start = models.PositiveIntegerField()
    char_end = models.PositiveIntegerField()
    tokens = models.PositiveIntegerField()
    dimensions = models.PositiveIntegerField(null=True, blank=True)
    embedding = VectorField(null=True, blank=True)
    # Kept by PostgreSQL from the headings (weighted higher) and the text.
    search_vector = models.GeneratedField(
        expression=SearchVector("section", weight="A", config=TEXT_SEARCH_CONFIG)
        + SearchVector("text", weight="B", config=TEXT_SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["file_id", "position"]
        indexes = [
            models.Index(fields=["store", "file"]),
            GinIndex(fields=["search_vector"], name="knowledge_chunk_fts"),
        ]

    def __str__(self) -> str:
        return f"{self.file} #{self.position}"
