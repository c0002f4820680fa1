"""Keys, users and models for the /v1 path from process memory, dropped the moment the database changes.

    token = lookups.begin()              # before reading the database
    value = lookups.get("key", digest)   # MISSING when not cached or not trusted now
    lookups.put("key", digest, value, token)

Who may call with what must never be served stale, so the cache trusts itself only while it is
told of every change: PostgreSQL triggers on the tables these rights come from (users, their
groups, API keys, every table of the catalogue; see `install_triggers`) NOTIFY a channel on commit, and one thread
per process LISTENs on a connection of its own. Any notification empties the cache. While that
connection is down, or has not confirmed it is alive for a few seconds, nothing is served from the
cache (every request reads the database, as without a cache) until it listens again, and the
cache is emptied then, so a change made meanwhile is never missed.

Triggers rather than signals: they see every writer (the admin's bulk actions, `.update()`,
`manage.py shell`, a SQL console), and a change on one worker reaches every other at once. Changes
that do not alter anyone's rights (a key's `last_used_at`, a user's `last_login`) do not notify.

A read that began before a change finishes after it would put the old rows back: `begin()` returns
the cache's generation, and `put` keeps the value only if no change came in between.

`await lookups.read(kind, key, load)` does all three, and the requests of one event loop that miss
the same entry at once share one `load` (after a restart or a change, a herd of 200 chat replies
starting together read the model once, not 200 times). Only requests of the same generation
share: one that arrives after a change never gets what was read before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final

from django.conf import settings

log = logging.getLogger(__name__)

CHANNEL: Final = "chatsite_rights"
MISSING: Final = object()

# The listener confirms its connection every HEARTBEAT seconds (a notification or a SELECT 1);
# without a confirmation for TRUSTED_FOR seconds (a connection silently gone) the cache is not used.
# Real time, not core.clock: this watches a real connection, not a rule tests move.
HEARTBEAT = 1.0
TRUSTED_FOR = 5.0
MAX_ENTRIES = 20_000  # a cap on what unknown key or model names can make it hold


def secret_digest(secret: str) -> bytes:
    """The cache key for an API key's secret (the secret itself is never kept)."""
    return hashlib.sha256(secret.encode()).digest()


class Lookups:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, Any], Any] = {}
        self._generation = 0
        self._listening = False
        self._confirmed = 0.0
        self._listener: _Listener | None = None
        self._flights: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], asyncio.Future[Any]]]
        self._flights = weakref.WeakKeyDictionary()

    # -- used by the request path ---------------------------------------------------------------

    def trusted(self) -> bool:
        """Whether cached rights may be served now: listening, and the connection confirmed lately."""
        self._ensure_listener()
        return self._listening and time.monotonic() - self._confirmed < TRUSTED_FOR

    def begin(self) -> int | None:
        """A token for `put`, taken before reading the database; None when nothing may be cached."""
        return self._generation if self.trusted() else None

    def get(self, kind: str, key: Any) -> Any:
        if not self.trusted():
            return MISSING
        return self._entries.get((kind, key), MISSING)

    def put(self, kind: str, key: Any, value: Any, token: int | None) -> None:
        if token is None:
            return
        with self._lock:
            if token != self._generation or not self._listening:
                return  # a change came in while it was being read
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[(kind, key)] = value

    async def read(self, kind: str, key: Any, load: Callable[[int | None], Awaitable[Any]]) -> Any:
        """The cached value, else what `load(token)` reads (and caches), read once for concurrent misses.

        `load` gets the token for any other entry it reads along (see `put`).
        """
        value = self.get(kind, key)
        if value is not MISSING:
            return value
        token = self.begin()
        if token is None:
            return await load(None)
        loop = asyncio.get_running_loop()
        flights = self._flights.setdefault(loop, {})
        name = (kind, key, token)
        flight = flights.get(name)
        if flight is None:
            flight = flights[name] = asyncio.ensure_future(self._load(kind, key, token, load))
            flight.add_done_callback(lambda _done: flights.pop(name, None))
        # Shielded: a caller that goes away must not cancel the read the others wait for.
        return await asyncio.shield(flight)

    async def _load(self, kind: str, key: Any, token: int, load: Callable[[int | None], Awaitable[Any]]) -> Any:
        value = await load(token)
        self.put(kind, key, value, token)
        return value

    def invalidate(self) -> None:
        """Forget everything (any change to users, keys or the catalogue)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()

    # -- the listener's side --------------------------------------------------------------------

    def _listening_again(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._listening = True
            self._confirmed = time.monotonic()

    def _confirm(self) -> None:
        self._confirmed = time.monotonic()

    def _stopped_listening(self) -> None:
        with self._lock:
            self._listening = False
            self._generation += 1
            self._entries.clear()

    def _ensure_listener(self) -> None:
        listener = self._listener
        if listener is not None and listener.pid == os.getpid():
            return
        with self._lock:
            if self._listener is None or self._listener.pid != os.getpid():
                # None yet, or a forked child's copy of its parent's (whose thread did not follow).
                self._listening = False
                self._listener = _Listener(self)
                self._listener.start()

    def stop(self) -> None:
        """Stop listening (tests, before their database is dropped); the cache is not used after."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        self._stopped_listening()

    @property
    def listener(self) -> _Listener | None:
        return self._listener


class _Listener(threading.Thread):
    """LISTENs on a connection of its own; reconnects, after GATEWAY_LISTEN_RETRY_SECONDS, when it drops."""

    def __init__(self, lookups: Lookups) -> None:
        super().__init__(name="rights-listener", daemon=True)
        self.lookups = lookups
        self.pid = os.getpid()
        self.application_name = f"chatsite-listener-{self.pid}"
        self._stopping = threading.Event()
        self._retry_now = threading.Event()
        self._connection: Any = None

    def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                self._listen()
                failures = 0
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning(
                        "rights listener lost its database connection (%s); reading rights from the database "
                        "until it listens again",
                        exc.__class__.__name__,
                    )
            finally:
                self.lookups._stopped_listening()
                self._close()
            delay = float(settings.GATEWAY_LISTEN_RETRY_SECONDS) * min(2 ** max(failures - 1, 0), 30)
            self._retry_now.wait(delay)
            self._retry_now.clear()

    def _listen(self) -> None:
        import psycopg
        from django.db import connections

        params = connections["default"].get_connection_params()
        params.update(
            autocommit=True,
            application_name=self.application_name,
            # A connection that silently went away (no reset from the peer) errors out in seconds.
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=2,
            tcp_user_timeout=10_000,
            connect_timeout=10,
        )
        connection = self._connection = psycopg.connect(**params)
        connection.execute(f"LISTEN {CHANNEL}")
        self.lookups._listening_again()
        while not self._stopping.is_set():
            for _notice in connection.notifies(timeout=HEARTBEAT):
                self.lookups.invalidate()
            connection.execute("SELECT 1")
            self.lookups._confirm()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    def retry_now(self) -> None:
        """Reconnect at once instead of after the retry delay (tests)."""
        self._retry_now.set()

    def stop(self) -> None:
        self._stopping.set()
        self._retry_now.set()
        self.join(timeout=HEARTBEAT * 10)  # it looks at _stopping at least every HEARTBEAT seconds


lookups = Lookups()


# ---------------------------------------------------------------------------------------------
# The triggers (installed after every `migrate`, see gateway.apps)

_FUNCTION = f"""
CREATE OR REPLACE FUNCTION chatsite_rights_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- TG_ARGV: columns whose change alters nobody's rights (last_used_at, last_login).
    IF TG_OP = 'UPDATE' AND (to_jsonb(OLD) - TG_ARGV) = (to_jsonb(NEW) - TG_ARGV) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
"""


def watched_tables() -> dict[str, list[str]]:
    """The tables rights are read from, with the columns whose changes don't matter to them.

    Every model of the catalogue app (providers, models, and whatever the catalogue adds later,
    such as deployments, and who may use a model), API keys, users and their groups.
    """
    from django.apps import apps

    from accounts.models import ApiKey, User

    tables: dict[str, list[str]] = {
        User._meta.db_table: ["last_login"],
        User.groups.through._meta.db_table: [],  # memberships: who may use a model restricted to groups
        ApiKey._meta.db_table: ["last_used_at"],
    }
    for model in apps.get_app_config("catalogue").get_models():
        if not model._meta.proxy and model._meta.managed:
            tables.setdefault(model._meta.db_table, [])
        for field in model._meta.local_many_to_many:
            through = field.remote_field.through
            if through is not None:
                tables.setdefault(through._meta.db_table, [])
    return tables


def install_triggers(using: str = "default") -> None:
    """(Re)create the notifying triggers on every watched table; idempotent."""
    from django.db import connections

    connection = connections[using]
    existing = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        cursor.execute(_FUNCTION)
        for table, ignored in watched_tables().items():
            if table not in existing:
                continue
            quoted = connection.ops.quote_name(table)
            arguments = ", ".join("'" + column.replace("'", "''") + "'" for column in ignored)
            cursor.execute(
                f"CREATE OR REPLACE TRIGGER chatsite_rights_update AFTER UPDATE ON {quoted} "
                f"FOR EACH ROW EXECUTE FUNCTION chatsite_rights_changed({arguments})"
            )
            cursor.execute(
                f"CREATE OR REPLACE TRIGGER chatsite_rights_write AFTER INSERT OR DELETE OR TRUNCATE ON {quoted} "
                "FOR EACH STATEMENT EXECUTE FUNCTION chatsite_rights_changed()"
            )
