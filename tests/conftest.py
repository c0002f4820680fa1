"""Shared fixtures: the personas every behaviour area tests with."""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from playwright.sync_api import expect

from accounts.models import User
from core.clock import ManualClock, use_clock
from tests.fake_anthropic import FakeAnthropic
from tests.fake_gemini import FakeGemini
from tests.fake_upstream import FakeUpstream, Reply
from tests.inprocess import InProcessApp
from tests.live_server import LiveServer, start_server
from tests.signed_in import sign_in

PASSWORD = "correct-horse-battery-staple"

# `make run` collects hashed, compressed static files under var/static; the tests serve the source files, as
# in a fresh checkout, whatever a developer ran before (a collection older than the sources, served beside
# them, answered a source file marked as gzip).
settings.STATIC_ROOT = tempfile.mkdtemp(prefix="test-static-")

# Playwright's expect() gives up after 5 s by default: a loaded machine may take longer to render a
# frame, and a test waiting for a condition must never fail for the machine's speed.
expect.set_options(timeout=30_000)


@functools.cache
def password_hash() -> str:
    """PASSWORD, hashed once per session: hashing it for every user of every test costs ~0.2 s each."""
    return make_password(PASSWORD)


def make_user(username: str, **fields: Any) -> User:
    """A user whose password is PASSWORD, as `create_user` makes one."""
    return User.objects.create(username=username, email=f"{username}@example.com", password=password_hash(), **fields)


@pytest.fixture
def alice(db: None) -> User:
    """The owner in most tests."""
    return make_user("alice")


@pytest.fixture
def bob(db: None) -> User:
    """Another user, who must never see alice's data."""
    return make_user("bob")


@pytest.fixture
def admin(db: None) -> User:
    return make_user("admin", is_staff=True, is_superuser=True)


@pytest.fixture(autouse=True)
def _close_gateway_db_connections() -> Iterator[None]:
    """Start each test with an empty rights cache; close core.db's threads' connections after it.

    The cache would learn that the previous test's rows are gone a moment later anyway (the flush
    notifies). Tests calling the gateway in-process leave database connections open otherwise,
    and the test database cannot be dropped at the end while connections to it are open.
    """
    from gateway import health
    from gateway.lookups import lookups
    from tools import site as tool_settings

    health.forget_local_state()  # deployments' circuits and in-flight counts of earlier tests
    # Rows of the previous test are gone (its tables were emptied); so are their cached rights.
    lookups.invalidate()
    tool_settings.forget()  # and the admin's tool settings read from them
    yield
    from core.db import close_db_connections

    close_db_connections()


def _is_transactional(request: pytest.FixtureRequest) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return bool(
        {"transactional_db", "live_server"} & set(request.fixturenames)
        or (marker is not None and marker.kwargs.get("transaction"))
    )


@pytest.fixture(autouse=True, scope="module")
def _fresh_connection_pool() -> Iterator[None]:
    """After each test file, a new connection pool (and new database threads' connections) for the next.

    A file that ends backends (a database restart played by pg_terminate_backend) or leaves threads holding
    connections must not hand the next file dead or checked-out connections.
    """
    yield
    from django.db import connections

    from core.db import close_db_connections

    close_db_connections()
    connections.close_all()
    for connection in connections.all(initialized_only=True):
        # Only an existing pool: reading `connection.pool` would create one just to close it.
        if connection.alias in getattr(connection, "_connection_pools", {}):
            connection.close_pool()


@pytest.fixture(autouse=True)
def _let_servers_finish_writing(request: pytest.FixtureRequest, django_db_blocker: Any) -> Iterator[None]:
    """Before a transactional test's tables are emptied, wait until no server is mid-write.

    Server processes write usage rows just after their answers; an INSERT in flight while the
    flush TRUNCATEs the tables it references deadlocks, failing this test or the next one.
    """
    if not _is_transactional(request):
        yield
        return
    request.getfixturevalue("transactional_db")  # torn down (flushed) after this fixture
    yield
    from django.db import connection

    quiet, deadline = 0, time.monotonic() + 5
    with django_db_blocker.unblock():
        while quiet < 3 and time.monotonic() < deadline:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND (state = 'active' OR state LIKE 'idle in transaction%%')"
                )
                busy = cursor.fetchone()[0]
            quiet = 0 if busy else quiet + 1
            time.sleep(0.02)


@pytest.fixture(scope="session")
def _fake_upstream_server() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _backup_server() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def backup(_backup_server: FakeUpstream) -> FakeUpstream:
    """A second fake upstream (another provider's deployment of a model), answering "from the backup"."""
    _backup_server.reset()
    _backup_server.default = Reply(content="from the backup")
    return _backup_server


@pytest.fixture
def fake_upstream(_fake_upstream_server: FakeUpstream) -> FakeUpstream:
    """The session's fake upstream, with an empty script and record for this test."""
    _fake_upstream_server.reset()
    return _fake_upstream_server


@pytest.fixture(scope="session")
def _fake_anthropic_server() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture
def fake_anthropic(_fake_anthropic_server: FakeAnthropic) -> FakeAnthropic:
    """The session's fake Anthropic API (tests/fake_anthropic.py), with an empty script and record."""
    _fake_anthropic_server.reset()
    return _fake_anthropic_server


@pytest.fixture(scope="session")
def _fake_gemini_server() -> Iterator[FakeGemini]:
    server = FakeGemini().start()
    yield server
    server.stop()


@pytest.fixture
def fake_gemini(_fake_gemini_server: FakeGemini) -> FakeGemini:
    """The session's fake Gemini API (tests/fake_gemini.py), with an empty script and record."""
    _fake_gemini_server.reset()
    return _fake_gemini_server


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator[Any]:
    """Headless Debian chromium through Playwright, one per test module (tests/browser.py)."""
    from tests.browser import launch

    yield from launch()


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    """A clock that moves only when the test says (rate limits, budgets' periods, cooldowns read it)."""
    manual = ManualClock()
    previous = use_clock(manual)
    yield manual
    use_clock(previous)


@pytest.fixture
def one_attempt(settings: Any) -> None:
    """Routing makes one attempt per request: an upstream's failure reaches the client as it was."""
    settings.ROUTING_MAX_ATTEMPTS = 1


@pytest.fixture(scope="session")
def _inprocess_app(django_db_setup: None, django_db_blocker: Any) -> Iterator[InProcessApp]:
    app = InProcessApp()
    yield app
    app.stop()


@pytest.fixture
def app(_inprocess_app: InProcessApp, transactional_db: None) -> Iterator[InProcessApp]:
    """chatsite.asgi.application called in process (tests/inprocess.py); its rows are written when the test ends."""
    yield _inprocess_app
    _inprocess_app.flush()


@pytest.fixture
def as_alice(app: InProcessApp, alice: User) -> httpx.Client:
    """A client of the in-process app, signed in as alice."""
    return sign_in(app.client(), alice)


@pytest.fixture
def as_bob(app: InProcessApp, bob: User) -> httpx.Client:
    """A client of the in-process app, signed in as bob."""
    return sign_in(app.client(), bob)


@pytest.fixture(scope="session")
def live_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[LiveServer]:
    """One real server process for the session; tests using it need `transactional_db`."""
    from django.conf import settings
    from django.db import connection

    server = start_server(dict(connection.settings_dict), settings.SECRET_KEY)
    yield server
    # Stop before pytest-django drops the test database, which fails while connections are open.
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def _no_connections_left_at_the_end(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """End sessions still attached to the test database so pytest-django can drop it.

    asgiref's sync_to_async (Django's sync views under ASGI, the tests' own calls) runs ORM calls in
    executor threads that each keep their own connection; nothing closes those threads' connections
    when the session ends. Torn down after
    every server fixture (those are set up later), before the test database is dropped.
    """
    yield
    from django.db import connection

    from gateway.lookups import lookups

    lookups.stop()  # its listening connection would come back after being ended below
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
