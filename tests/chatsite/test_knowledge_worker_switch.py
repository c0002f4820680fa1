"""`make run` starts the knowledge ingestion worker unless KNOWLEDGE_WORKER=0 says it runs elsewhere."""

from __future__ import annotations

from typing import Any

import pytest

from chatsite.worker import start_knowledge_worker


def test_with_knowledge_worker_off_make_run_starts_no_worker(settings: Any, capsys: pytest.CaptureFixture[str]) -> None:
    settings.KNOWLEDGE_WORKER = False
    assert start_knowledge_worker() is None
    assert "KNOWLEDGE_WORKER=0" in capsys.readouterr().out
