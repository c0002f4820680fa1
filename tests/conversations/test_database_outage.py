"""A reply that ends while PostgreSQL is unreachable is saved, and reaches its socket, once it is back.

The outage is played on the worker alone: its connections are ended and the test database refuses new
ones until the test allows them again (what a restart or a failover looks like from the worker).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from accounts.models import User
from catalogue.models import LanguageModel
from conversations.models import Conversation, Message
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer, start_server
from tests.scaleout.test_two_workers import WORDS, _finished, _frames, _session_cookie, _socket, model  # noqa: F401

pytestmark = pytest.mark.timeout(180)

WORKER_NAME = "chatsite-outage-test"


@pytest.fixture
def worker(transactional_db: None) -> Iterator[LiveServer]:
    server = start_server(dict(connection.settings_dict), settings.SECRET_KEY, application_name=WORKER_NAME)
    yield server
    server.stop()


def _allow_connections(allowed: bool) -> None:
    """From the maintenance database: PostgreSQL will not close the one a session is in."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True) as maintenance:
        name = connection.ops.quote_name(connection.settings_dict["NAME"])
        maintenance.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {'true' if allowed else 'false'}")
        if not allowed:
            maintenance.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                [WORKER_NAME],
            )


def _logged(server: LiveServer, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, f"the worker never logged {text!r}:\n{server.log()[-3000:]}"
        time.sleep(0.1)


def test_a_reply_ending_during_a_database_outage_is_saved_and_shown_once_it_is_back(
    worker: LiveServer,
    model: LanguageModel,  # noqa: F811
    alice: User,
    fake_upstream: FakeUpstream,
) -> None:
    conversation = Conversation.objects.create(owner=alice, model=model)
    held = Reply(content=WORDS, chunks=30, hold_after_chunks=5)
    fake_upstream.queue(held)
    with _socket(worker, conversation, _session_cookie(alice)) as socket:
        _frames(socket, lambda f: f["type"] == "messages")
        socket.send(json.dumps({"type": "send", "content": "Count for me"}))
        _frames(socket, lambda f: f["type"] == "delta")
        try:
            _allow_connections(False)
            held.released.set()
            _logged(worker, "its last save failed")  # the reply's last save met the outage
        finally:
            _allow_connections(True)
        end = _frames(socket, _finished, timeout=90)[-1]

    assert (end["message"]["status"], end["message"]["content"]) == ("complete", WORDS)
    reply = Message.objects.get(conversation=conversation, role="assistant")
    assert (reply.status, reply.content) == (Message.Status.COMPLETE, WORDS)
