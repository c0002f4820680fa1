"""A worker killed mid-stream (SIGKILL: no exit hook, no lifespan) still leaves the call in the ledger.

The ledger notes calls in flight in its batches, off the request path; the last note survives the
worker, and a later sweep marks the row interrupted. The server process notes every 0.2 s here.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from accounts.keys import create_key
from accounts.models import ApiKey, User
from catalogue.models import LanguageModel, Provider
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer, start_server
from usage.ledger import IN_FLIGHT, INTERRUPTED, INTERRUPTED_CODE, mark_interrupted, stale_seconds
from usage.models import UsageRecord
from usage.tokens import tokens_for_bytes

pytestmark = pytest.mark.timeout(120)

MODEL = "acme/killed"
SENT = 240


@pytest.fixture(params=["uvicorn", "daphne"])
def worker(request: pytest.FixtureRequest, transactional_db: None) -> Iterator[LiveServer]:
    from django.conf import settings
    from django.db import connection

    server = start_server(
        dict(connection.settings_dict),
        settings.SECRET_KEY,
        server=request.param,
        env={"LEDGER_PROGRESS_SECONDS": "0.2"},
    )
    yield server
    server.stop()


def _model_and_key(fake_upstream: FakeUpstream, alice: User) -> tuple[ApiKey, str]:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=30)
    LanguageModel.objects.create(public_id=MODEL, provider=provider, upstream_model="fake")
    return create_key(alice, "streams")


def _row_with_tokens(key_id: int, minimum: int, timeout: float = 30.0) -> UsageRecord | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = UsageRecord.objects.filter(api_key_id=key_id, completion_tokens__gte=minimum).first()
        if row is not None:
            return row
        time.sleep(0.05)
    return None


def test_a_worker_killed_mid_stream_leaves_a_ledger_row_with_what_was_sent(
    worker: LiveServer, fake_upstream: FakeUpstream, alice: User
) -> None:
    key, secret = _model_and_key(fake_upstream, alice)
    reply = Reply(content=" ".join(f"w{i:03}" for i in range(300)), chunks=300, hold_after_chunks=SENT)
    fake_upstream.queue(reply)

    body = {"model": MODEL, "messages": [{"role": "user", "content": "count"}], "stream": True}
    text = ""
    with httpx.stream(
        "POST", worker.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}
    ) as answer:
        assert answer.status_code == 200
        received = 0
        lines = answer.iter_lines()  # kept: a line iterator closed early closes the connection
        for line in lines:
            if line.startswith("data: {"):
                text += json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                received += 1
                if received == SENT:
                    break
        # Every piece sent is in the worker's next note of the call (tokens estimated from its bytes).
        noted = _row_with_tokens(key.pk, tokens_for_bytes(len(text.encode())))
        assert noted is not None, "no ledger row of the call in flight"
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)

    row = UsageRecord.objects.get(api_key=key)  # one row, the worker's last note
    assert row.status == IN_FLIGHT
    assert row.completion_tokens >= tokens_for_bytes(len(text.encode())) > 0
    assert row.stream and row.usage_estimated and row.model_public_id == MODEL

    assert mark_interrupted() == 0  # not stale yet: its worker might still be writing
    later = row.created_at + timedelta(milliseconds=row.latency_ms, seconds=stale_seconds() + 1)
    assert mark_interrupted(now=later) == 1
    row.refresh_from_db()
    assert (row.status, row.error_code) == (INTERRUPTED, INTERRUPTED_CODE)
    assert row.completion_tokens > 0  # what was sent stays billed


def test_a_stream_that_lands_updates_its_in_flight_row(
    worker: LiveServer, fake_upstream: FakeUpstream, alice: User
) -> None:
    key, secret = _model_and_key(fake_upstream, alice)
    reply = Reply(content="one two three four", chunks=4, hold_after_chunks=2)
    fake_upstream.queue(reply)

    body = {"model": MODEL, "messages": [{"role": "user", "content": "count"}], "stream": True}
    with httpx.stream(
        "POST", worker.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}
    ) as answer:
        lines = answer.iter_lines()
        while not next(lines).startswith("data: {"):
            pass
        assert _row_with_tokens(key.pk, 1) is not None  # noted while in flight
        reply.released.set()
        rest = list(lines)
    assert "data: [DONE]" in rest

    deadline = time.monotonic() + 30
    while UsageRecord.objects.get(api_key=key).status == IN_FLIGHT and time.monotonic() < deadline:
        time.sleep(0.05)
    row = UsageRecord.objects.get(api_key=key)  # the same row, landed: no second one
    assert (row.status, row.error_code) == (200, "")
    assert row.completion_tokens == 4 and not row.usage_estimated  # the upstream's usage, now reported
