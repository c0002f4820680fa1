"""Helpers of the chat's knowledge tests (their fixtures, `knowledge_media` and `ingest_at_once`, are in conftest)."""

from __future__ import annotations

from accounts.models import User
from knowledge import services
from knowledge.models import VectorStore, VectorStoreFile


def ingested(store: VectorStore, filename: str, text: str) -> VectorStoreFile:
    entry = services.add_file(store, services.store_file(store.owner, filename, text.encode()))
    services.ingest(entry.pk)
    entry.refresh_from_db()
    assert entry.status == VectorStoreFile.Status.COMPLETED, entry.last_error
    return entry


def a_store(user: User, name: str = "Manuals") -> VectorStore:
    return services.create_store(user, name)
