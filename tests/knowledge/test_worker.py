"""The ingestion queue with its worker as a real process (`manage.py knowledge_worker`) on the test database."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable

import pytest
from django.db import connection

from accounts.models import User
from knowledge import services
from knowledge.models import Chunk, StoredFile, VectorStoreFile
from tests.knowledge_worker import DEADLINE, settled

pytestmark = pytest.mark.django_db(transaction=True)

MARKDOWN = "# Guide\n\nIntro.\n\n## Install\n\nRun the installer, then restart.\n"


def test_a_worker_process_ingests_a_file_end_to_end_and_stops_on_ctrl_c(
    alice: User, start_worker: Callable[[], subprocess.Popen[str]]
) -> None:
    worker = start_worker()
    store = services.create_store(alice, "docs")
    entry = services.add_file(store, services.store_file(alice, "guide.md", MARKDOWN.encode()))
    assert entry.status == VectorStoreFile.Status.IN_PROGRESS
    entry = settled(entry)
    assert entry.status == VectorStoreFile.Status.COMPLETED, entry.last_error
    sections = list(Chunk.objects.filter(store=store).values_list("section", flat=True))
    assert sections == ["Guide", "Guide > Install"]
    worker.send_signal(signal.SIGINT)
    assert worker.wait(DEADLINE) == 0


def test_a_failing_extraction_fails_with_its_reason_and_loses_nothing(
    alice: User, start_worker: Callable[[], object]
) -> None:
    start_worker()
    store = services.create_store(alice, "docs")
    broken = services.add_file(store, services.store_file(alice, "broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50))
    good = services.add_file(store, services.store_file(alice, "guide.md", MARKDOWN.encode()))
    broken, good = settled(broken), settled(good)
    assert broken.status == VectorStoreFile.Status.FAILED
    assert broken.last_error == {"code": "unreadable_file", "message": "The PDF could not be read; it may be damaged."}
    assert good.status == VectorStoreFile.Status.COMPLETED
    kept = StoredFile.objects.get(pk=broken.file_id)
    with kept.content.open("rb") as handle:
        assert handle.read().startswith(b"%PDF-1.7")
    assert not Chunk.objects.filter(file=kept).exists()


def test_a_crashed_workers_half_done_file_is_picked_up_again(alice: User, start_worker: Callable[[], object]) -> None:
    store = services.create_store(alice, "docs")
    entry = services.add_file(store, services.store_file(alice, "guide.md", MARKDOWN.encode()))
    with connection.cursor() as cursor:
        # What a worker killed mid-file leaves: its job "doing", its heartbeat long silent.
        cursor.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') RETURNING id"
        )
        dead_worker = cursor.fetchone()[0]
        cursor.execute(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s "
            "WHERE task_name = 'knowledge.ingest' AND status = 'todo' AND (args->>'entry_id')::bigint = %s",
            [dead_worker, entry.pk],
        )
        assert cursor.rowcount == 1
    start_worker()
    assert settled(entry).status == VectorStoreFile.Status.COMPLETED
    assert Chunk.objects.filter(store=store).count() == 2
