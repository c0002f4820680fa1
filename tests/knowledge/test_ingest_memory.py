"""Ingesting a PDF leaves nothing of it in memory: a worker's memory follows its largest file, not the batch."""

from __future__ import annotations

import gc

import pytest
from pypdf import PdfReader

from accounts.models import User
from knowledge import services
from tests.sample_files import pdf

pytestmark = pytest.mark.django_db


def test_nothing_of_an_ingested_pdf_stays_in_memory(alice: User) -> None:
    store = services.create_store(alice, "manuals")
    gc.collect()
    gc.disable()  # only what ingest itself frees counts, not a collection that happens to run meanwhile
    try:
        entry = services.add_file(store, services.store_file(alice, "manual.pdf", pdf("Change the oil.", "Rotate.")))
        services.ingest(entry.pk)
        # type(), not isinstance(): the latter asks lazy objects (a request's CSP nonce) for their __class__.
        readers = [o for o in gc.get_objects() if type(o) is PdfReader]
    finally:
        gc.enable()
    entry.refresh_from_db()
    assert entry.status == "completed"
    assert readers == []
