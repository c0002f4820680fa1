"""A server stopped gracefully writes the ledger rows it still held: one row for every request answered.

The servers are told to hold rows for an hour before writing (LEDGER_FLUSH_SECONDS), so every row
found afterwards was written by the shutdown itself: ASGI lifespan under uvicorn, the exit hook
under daphne (which stops on SIGTERM without lifespan).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import LanguageModel, Provider
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer, start_server
from usage.models import UsageRecord

pytestmark = pytest.mark.timeout(120)

MODEL = "acme/ledgered"
PLAIN, STREAMED = 4, 3


@pytest.fixture(params=["uvicorn", "daphne"])
def holding_server(request: pytest.FixtureRequest, transactional_db: None) -> Iterator[LiveServer]:
    from django.conf import settings
    from django.db import connection

    server = start_server(
        dict(connection.settings_dict), settings.SECRET_KEY, server=request.param, env={"LEDGER_FLUSH_SECONDS": "3600"}
    )
    yield server
    server.stop()


def _post(server: LiveServer, secret: str, body: dict[str, Any]) -> httpx.Response:
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **body}
    return httpx.post(
        server.url + "/v1/chat/completions", json=payload, headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )


def test_a_graceful_stop_writes_a_ledger_row_for_every_request_answered(
    holding_server: LiveServer, fake_upstream: FakeUpstream, alice: User
) -> None:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=10)
    LanguageModel.objects.create(public_id=MODEL, provider=provider, upstream_model="fake")
    key, secret = create_key(alice, "shutdown")
    fake_upstream.default = Reply(content="one two three", chunks=3)

    for _ in range(PLAIN):
        assert _post(holding_server, secret, {}).status_code == 200
    for _ in range(STREAMED):
        answer = _post(holding_server, secret, {"stream": True})
        assert answer.status_code == 200
        assert answer.text.rstrip().endswith("data: [DONE]")
        assert json.loads(answer.text.split("data: ")[1])["object"] == "chat.completion.chunk"
    refused = _post(holding_server, "sk-" + "x" * 43, {})
    assert refused.status_code == 401  # an unknown caller is no one's row
    assert UsageRecord.objects.count() == 0  # held: nothing written before the stop

    holding_server.stop()
    assert holding_server.process.returncode is not None

    rows = list(UsageRecord.objects.filter(api_key=key))
    assert len(rows) == PLAIN + STREAMED
    assert sorted(r.stream for r in rows) == [False] * PLAIN + [True] * STREAMED
    assert {r.status for r in rows} == {200}
    key.refresh_from_db()
    assert key.last_used_at is not None
