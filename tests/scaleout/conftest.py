"""Two server processes sharing one PostgreSQL and one Redis, as behind a load balancer.

Worker A is daphne and worker B uvicorn: the README lets either serve, and a deployment may mix them
while it moves from one to the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.live_server import LiveServer, start_server
from tests.scaleout.redis_server import RedisServer, redis_server  # noqa: F401


@dataclass
class Cluster:
    a: LiveServer
    b: LiveServer
    redis: RedisServer


@pytest.fixture(scope="session")
def cluster(django_db_setup: None, django_db_blocker: Any, redis_server: RedisServer) -> Iterator[Cluster]:  # noqa: F811
    from django.conf import settings
    from django.db import connection

    env = {"REDIS_URL": redis_server.url}
    a = start_server(dict(connection.settings_dict), settings.SECRET_KEY, server="daphne", env=env)
    try:
        b = start_server(dict(connection.settings_dict), settings.SECRET_KEY, server="uvicorn", env=env)
    except Exception:
        a.stop()
        raise
    yield Cluster(a, b, redis_server)
    b.stop()
    a.stop()


@pytest.fixture
def shared(cluster: Cluster, transactional_db: None, settings: Any) -> Cluster:
    """The cluster, with Redis emptied and this process announcing limit changes through it."""
    cluster.redis.flush()
    settings.REDIS_URL = cluster.redis.url
    return cluster
