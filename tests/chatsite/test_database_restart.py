"""After PostgreSQL drops every connection (a restart, a failover), a worker answers the next requests well.

Its pooled connections are all dead then: each must be found dead and replaced before use, not handed to a
request that then fails. The restart is played by terminating every backend of the worker.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from accounts.keys import create_key
from accounts.models import User
from tests.live_server import LiveServer, start_server
from tests.signed_in import sign_in

pytestmark = pytest.mark.timeout(120)

WORKER_NAME = "chatsite-restart-test"


@pytest.fixture
def worker(transactional_db: None) -> Iterator[LiveServer]:
    from django.conf import settings
    from django.db import connection

    # Named, so that only the worker's connections are ended: this process's threads keep theirs for
    # the tests that follow.
    server = start_server(
        dict(connection.settings_dict), settings.SECRET_KEY, server="uvicorn", application_name=WORKER_NAME
    )
    yield server
    server.stop()


def _drop_the_workers_connections(worker: LiveServer) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name IN (%s, %s)",
            [WORKER_NAME, f"chatsite-listener-{worker.process.pid}"],
        )
        return int(cursor.fetchone()[0])


def test_a_worker_answers_well_after_the_database_dropped_its_connections(worker: LiveServer, alice: User) -> None:
    _, secret = create_key(alice, "restart")
    api = {"Authorization": f"Bearer {secret}"}
    with sign_in(httpx.Client(base_url=worker.url, timeout=30), alice) as browser:
        # Both of the worker's ways to the database hold connections: the pool (pages) and its threads (/v1).
        for _ in range(3):
            assert browser.get("/").status_code == 200
            assert browser.get("/v1/models", headers=api).status_code == 200
        assert _drop_the_workers_connections(worker) > 0

        pages = [browser.get("/").status_code for _ in range(4)]
        models = [browser.get("/v1/models", headers=api).status_code for _ in range(4)]
    assert pages == [200] * 4
    assert models == [200] * 4
