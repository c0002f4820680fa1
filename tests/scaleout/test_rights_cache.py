"""Two worker processes cache keys, users and models; a change reaches both, and a deaf worker reads the database.

Worker B listens as usual; worker A, once its listening connection is ended, stays without one
(a retry delay of an hour) so the test sees what it does meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from accounts.keys import create_key
from accounts.models import ApiKey, User
from catalogue.models import LanguageModel, Provider
from tests.fake_upstream import FakeUpstream
from tests.live_server import LiveServer, start_server

pytestmark = pytest.mark.timeout(180)

MODEL = "acme/cached"
DEADLINE = 20.0  # generous: a change reaches the workers in milliseconds


@pytest.fixture(scope="module")
def workers(django_db_setup: None, django_db_blocker: Any) -> Iterator[tuple[LiveServer, LiveServer]]:
    from django.conf import settings

    settings_dict = dict(connection.settings_dict)
    a = start_server(settings_dict, settings.SECRET_KEY, server="uvicorn", env={"GATEWAY_LISTEN_RETRY_SECONDS": "3600"})
    try:
        b = start_server(settings_dict, settings.SECRET_KEY, server="daphne")
    except Exception:
        a.stop()
        raise
    yield a, b
    b.stop()
    a.stop()


@pytest.fixture
def model(fake_upstream: FakeUpstream, transactional_db: None) -> LanguageModel:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=10)
    return LanguageModel.objects.create(public_id=MODEL, provider=provider, upstream_model="fake")


def _chat(server: LiveServer, secret: str) -> int:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {secret}"}
    return httpx.post(server.url + "/v1/chat/completions", json=body, headers=headers, timeout=30).status_code


def _eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE}s: {what}")
        time.sleep(0.01)


def _rights_cache(server: LiveServer) -> str:
    return str(httpx.get(server.url + "/readyz", timeout=10).json()["rights_cache"])


def _cached_on_both(workers: tuple[LiveServer, LiveServer], secret: str) -> None:
    for server in workers:
        _eventually(lambda s=server: _rights_cache(s) == "listening", f"{server.url} listens")  # type: ignore[misc]
        assert _chat(server, secret) == 200
        assert _chat(server, secret) == 200


def test_a_revoked_key_a_deactivated_user_and_a_disabled_model_are_refused_by_both_workers(
    workers: tuple[LiveServer, LiveServer], model: LanguageModel, alice: User, bob: User
) -> None:
    key, secret = create_key(alice, "revoked")
    _bob_key, bob_secret = create_key(bob, "deactivated")
    _key, other_secret = create_key(alice, "kept")
    for each in (secret, bob_secret, other_secret):
        _cached_on_both(workers, each)

    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    User.objects.filter(pk=bob.pk).update(is_active=False)
    for server in workers:
        _eventually(lambda s=server: _chat(s, secret) == 401, f"{server.url} refuses the revoked key")  # type: ignore[misc]
        _eventually(lambda s=server: _chat(s, bob_secret) == 401, f"{server.url} refuses bob")  # type: ignore[misc]
        assert _chat(server, other_secret) == 200

    LanguageModel.objects.filter(pk=model.pk).update(enabled=False)
    for server in workers:
        _eventually(lambda s=server: _chat(s, other_secret) == 404, f"{server.url} refuses the model")  # type: ignore[misc]
    LanguageModel.objects.filter(pk=model.pk).update(enabled=True)
    Provider.objects.filter(pk=model.provider_id).update(enabled=False)
    for server in workers:
        _eventually(lambda s=server: _chat(s, other_secret) == 404, f"{server.url} refuses the provider")  # type: ignore[misc]


def test_a_worker_whose_listener_dropped_reads_rights_from_the_database(
    workers: tuple[LiveServer, LiveServer], model: LanguageModel, alice: User
) -> None:
    a, b = workers
    key, secret = create_key(alice, "revoked while A is deaf")
    _cached_on_both(workers, secret)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [f"chatsite-listener-{a.process.pid}"],
        )
        assert cursor.fetchone() == (True,)
    _eventually(lambda: _rights_cache(a) == "database", "worker A notices its listener is gone")

    # A can no longer be told; it must read the revocation itself, on its very next request.
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert _chat(a, secret) == 401
    _eventually(lambda: _chat(b, secret) == 401, "worker B refuses the key")
    assert _rights_cache(a) == "database"
    assert _rights_cache(b) == "listening"
