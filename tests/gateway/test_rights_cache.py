"""Keys, users and models come from a cache that forgets them the moment they change, or is not used.

The change is made the way nothing in-process can notice (a queryset `.update()`, as the admin's bulk
actions and SQL consoles do): only the database's notification can tell the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from accounts.keys import create_key
from accounts.models import ApiKey, User
from catalogue.models import Deployment, LanguageModel, Provider
from gateway.lookups import CHANNEL, MISSING, lookups, secret_digest
from tests.gateway.conftest import MODEL, Gateway

DEADLINE = 20.0  # generous: the change reaches the cache in milliseconds


def _chat(gateway: Gateway, secret: str | None = None, model: str = MODEL) -> int:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return gateway.http.post("/v1/chat/completions", json=body, headers=gateway.headers(secret)).status_code


def _eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE}s: {what}")
        time.sleep(0.01)


def _listening() -> bool:
    return lookups.trusted()


@pytest.fixture
def cached(gateway: Gateway) -> Gateway:
    """The gateway, with its key and model in the cache (the listener confirmed first)."""
    _eventually(_listening, "the listener listens")
    # A lookup that overlaps the notifications of the fixture's own inserts is not kept: ask again.
    _eventually(lambda: _chat(gateway) == 200 and _is_cached(gateway.secret), "the key is cached")
    return gateway


def _is_cached(secret: str) -> bool:
    return lookups.get("key", secret_digest(secret)) is not MISSING


def test_a_key_and_its_model_are_served_from_the_cache(cached: Gateway) -> None:
    assert lookups.get("key", secret_digest(cached.secret)).key.pk == cached.key.pk
    assert lookups.get("model", MODEL).pk == cached.model.pk
    assert _chat(cached) == 200


def test_a_key_revoked_behind_the_caches_back_is_refused(cached: Gateway) -> None:
    ApiKey.objects.filter(pk=cached.key.pk).update(revoked_at=timezone.now())
    _eventually(lambda: _chat(cached) == 401, "the revoked key is refused")


def test_a_deactivated_user_is_refused(cached: Gateway) -> None:
    User.objects.filter(pk=cached.user.pk).update(is_active=False)
    _eventually(lambda: _chat(cached) == 401, "the deactivated user is refused")


def test_a_disabled_model_or_provider_is_not_found(cached: Gateway) -> None:
    LanguageModel.objects.filter(pk=cached.model.pk).update(enabled=False)
    _eventually(lambda: _chat(cached) == 404, "the disabled model is refused")
    LanguageModel.objects.filter(pk=cached.model.pk).update(enabled=True)
    _eventually(lambda: _chat(cached) == 200, "the enabled model is served again")
    Provider.objects.filter(pk=cached.provider.pk).update(enabled=False)
    _eventually(lambda: _chat(cached) == 404, "the model of a disabled provider is refused")


def test_a_key_revoked_through_the_orm_is_refused_on_the_very_next_request(cached: Gateway) -> None:
    # The process that revokes forgets at once, before the database's notification arrives.
    cached.key.revoked_at = timezone.now()
    cached.key.save(update_fields=["revoked_at"])
    assert _chat(cached) == 401


def test_a_key_scoped_to_other_models_after_caching_is_refused(cached: Gateway) -> None:
    ApiKey.objects.filter(pk=cached.key.pk).update(allowed_models=["acme/other"])
    _eventually(lambda: _chat(cached) == 403, "the key's new scope applies")


def test_a_model_created_after_a_miss_is_found(cached: Gateway) -> None:
    assert _chat(cached, model="acme/new") == 404
    # Written without the ORM's signals, as a script or a SQL console would: only the triggers tell.
    (new,) = LanguageModel.objects.bulk_create(
        [LanguageModel(public_id="acme/new", provider=cached.provider, upstream_model="fake-new")]
    )
    Deployment.objects.bulk_create([Deployment(model=new, provider=cached.provider, upstream_model="fake-new")])
    _eventually(lambda: _chat(cached, model="acme/new") == 200, "the new model is found")


def test_the_models_list_follows_the_catalogue(cached: Gateway) -> None:
    def listed() -> list[str]:
        response = cached.http.get("/v1/models", headers=cached.headers())
        return [m["id"] for m in response.json()["data"]]

    assert listed() == [MODEL]
    LanguageModel.objects.filter(pk=cached.model.pk).update(enabled=False)
    _eventually(lambda: listed() == [], "the disabled model leaves the list")


# ---------------------------------------------------------------------------------------------
# The triggers


@pytest.fixture
def notifications(transactional_db: None) -> Iterator[psycopg.Connection[Any]]:
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        yield listener


def _next_notice(listener: psycopg.Connection[Any]) -> str | None:
    for notice in listener.notifies(timeout=DEADLINE, stop_after=1):
        return notice.payload
    return None


def test_changes_that_alter_no_rights_notify_nobody(alice: User, notifications: psycopg.Connection[Any]) -> None:
    key, _secret = create_key(alice, "k")
    assert _next_notice(notifications) == "accounts_apikey"
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    User.objects.filter(pk=alice.pk).update(last_login=timezone.now())
    Provider.objects.create(name="marker", base_url="http://127.0.0.1:9/v1")
    # Notifications arrive in commit order: the next one is the provider's, nothing before it.
    assert _next_notice(notifications) == "catalogue_provider"


def test_every_change_to_rights_notifies(alice: User, notifications: psycopg.Connection[Any]) -> None:
    key, _secret = create_key(alice, "k")
    assert _next_notice(notifications) == "accounts_apikey"
    ApiKey.objects.filter(pk=key.pk).update(name="renamed")
    assert _next_notice(notifications) == "accounts_apikey"
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert _next_notice(notifications) == "accounts_user"
    ApiKey.objects.filter(pk=key.pk).delete()
    assert _next_notice(notifications) == "accounts_apikey"


# ---------------------------------------------------------------------------------------------
# A listener that lost its connection


def _end_listener_connection() -> None:
    listener = lookups.listener
    assert listener is not None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [listener.application_name],
        )
        assert cursor.fetchone() is not None


def test_without_its_listener_a_worker_reads_rights_from_the_database_until_it_listens_again(
    cached: Gateway, settings: Any
) -> None:
    settings.GATEWAY_LISTEN_RETRY_SECONDS = 3600  # stays down until told to retry
    listener = lookups.listener
    assert listener is not None
    try:
        _end_listener_connection()
        _eventually(lambda: not _listening(), "the worker notices its listener is gone")

        # No notification can arrive now: the next request must read the revocation itself.
        other, other_secret = create_key(cached.user, "other")
        assert _chat(cached, other_secret) == 200
        ApiKey.objects.filter(pk=other.pk).update(revoked_at=timezone.now())
        assert _chat(cached, other_secret) == 401
        assert lookups.get("key", secret_digest(cached.secret)) is MISSING
        assert _chat(cached) == 200
        assert lookups.get("key", secret_digest(cached.secret)) is MISSING  # nothing is cached meanwhile
    finally:
        listener.retry_now()
    _eventually(_listening, "the worker listens again")
    assert _chat(cached, other_secret) == 401
    _eventually(lambda: _chat(cached) == 200 and _is_cached(cached.secret), "the key is cached again")


def test_requests_that_miss_the_same_entry_at_once_read_it_once(cached: Gateway) -> None:
    loads: list[int | None] = []

    async def load(token: int | None) -> str:
        loads.append(token)
        await asyncio.sleep(0.01)  # a database read, while the others arrive
        return "row"

    async def herd() -> list[Any]:
        return await asyncio.gather(*(lookups.read("herd", "entry", load) for _ in range(50)))

    assert asyncio.run(herd()) == ["row"] * 50
    assert len(loads) == 1
    assert lookups.get("herd", "entry") == "row"


def test_a_request_after_a_change_does_not_get_what_was_read_before_it(cached: Gateway) -> None:
    reads: list[str] = []

    async def scenario() -> tuple[Any, Any]:
        first_read_started = asyncio.Event()
        release_first_read = asyncio.Event()

        async def old_load(_token: int | None) -> str:
            reads.append("old")
            first_read_started.set()
            await release_first_read.wait()
            return "before the change"

        async def new_load(_token: int | None) -> str:
            reads.append("new")
            return "after the change"

        first = asyncio.ensure_future(lookups.read("change", "entry", old_load))
        await first_read_started.wait()
        lookups.invalidate()  # what a notification does
        # Bounded: joining the older read would wait for it forever.
        second = await asyncio.wait_for(lookups.read("change", "entry", new_load), DEADLINE)
        release_first_read.set()
        return await first, second

    assert asyncio.run(scenario()) == ("before the change", "after the change")
    assert reads == ["old", "new"]
    assert lookups.get("change", "entry") == "after the change"  # the older read was not kept


def test_a_caller_that_goes_away_does_not_cancel_the_read_others_wait_for(cached: Gateway) -> None:
    async def scenario() -> Any:
        release = asyncio.Event()

        async def load(_token: int | None) -> str:
            await release.wait()
            return "row"

        leaving = asyncio.ensure_future(lookups.read("leave", "entry", load))
        await asyncio.sleep(0)
        staying = asyncio.ensure_future(lookups.read("leave", "entry", load))
        await asyncio.sleep(0)
        leaving.cancel()
        release.set()
        return await staying

    assert asyncio.run(scenario()) == "row"
