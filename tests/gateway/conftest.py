"""Fixtures for the gateway: a catalogue pointing at the fake upstream, keys, SDK clients.

The gateway runs in process (tests/inprocess.py), on its own event loop as behind a server, so tests
here need `transactional_db`; `wait_for_usage` polls the ledger, which it writes after answering.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from accounts.keys import create_key
from accounts.models import ApiKey, User
from catalogue.models import LanguageModel, Provider
from gateway.auth import Caller
from tests.fake_gemini import FakeGemini
from tests.fake_upstream import FakeUpstream
from tests.inprocess import InProcessApp
from tests.knowledge_worker import start_worker  # noqa: F401
from tests.live_server import LiveServer
from tests.scaleout.redis_server import redis_server  # noqa: F401
from tests.tools.fixtures import local, mcp_base, search_base, search_engine, site  # noqa: F401
from usage.ledger import IN_FLIGHT
from usage.models import UsageRecord

MODEL = "acme/chat-small"  # a public id with a slash, as catalogues often have
UPSTREAM_MODEL = "fake-small"
GEMINI = "google/gemini-flash"  # the `gemini` fixture's model, on a provider of kind gemini
UPSTREAM_GEMINI = "gemini-2.5-flash"
UPSTREAM_GEMINI_KEY = "AIza-upstream-secret-0123456789"


@dataclass
class Gateway:
    app: InProcessApp
    provider: Provider
    model: LanguageModel
    user: User
    key: ApiKey
    secret: str
    # Set for the few tests of the wire itself (disconnects, bodies sent in pieces): a real server.
    live_url: str | None = None

    @property
    def url(self) -> str:
        return self.live_url or self.app.url

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def http(self) -> httpx.Client:
        """A plain HTTP client of the app (absolute URLs under `url` or paths)."""
        return httpx.Client(base_url=self.url, timeout=60) if self.live_url else self.app.client()

    def client(self, secret: str | None = None, **kwargs: Any) -> openai.OpenAI:
        http = kwargs.pop("http_client", None) or self.http
        return openai.OpenAI(
            base_url=self.base_url, api_key=secret or self.secret, max_retries=0, http_client=http, **kwargs
        )

    def async_client(self, secret: str | None = None) -> openai.AsyncOpenAI:
        http = httpx.AsyncClient(timeout=60) if self.live_url else self.app.async_client()
        return openai.AsyncOpenAI(
            base_url=self.base_url, api_key=secret or self.secret, max_retries=0, http_client=http
        )

    def headers(self, secret: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret or self.secret}"}


@pytest.fixture
def gateway(app: InProcessApp, fake_upstream: FakeUpstream) -> Iterator[Gateway]:
    user = User.objects.create_user("alice", "alice@example.com", "correct-horse-battery-staple")
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=5)
    provider.set_api_key("sk-upstream-secret-0123456789")
    provider.save()
    fake_upstream.api_key = "sk-upstream-secret-0123456789"
    model = LanguageModel.objects.create(
        public_id=MODEL,
        provider=provider,
        upstream_model=UPSTREAM_MODEL,
        context_length=8192,
        max_output_tokens=1000,
        owned_by="acme",
        description="A small test model",
        category="chat",
        input_price_per_million=1,
        output_price_per_million=2,
    )
    key, secret = create_key(user, "tests")
    yield Gateway(app, provider, model, user, key, secret)


@pytest.fixture
def gemini(gateway: Gateway, fake_gemini: FakeGemini) -> Iterator[LanguageModel]:
    """A model on a provider of kind `gemini`: the fake Gemini upstream, which requires its key."""
    provider = Provider.objects.create(
        name="google", kind=Provider.Kind.GEMINI, base_url=fake_gemini.base_url, read_timeout=5
    )
    provider.set_api_key(UPSTREAM_GEMINI_KEY)
    provider.save()
    fake_gemini.api_key = UPSTREAM_GEMINI_KEY
    yield LanguageModel.objects.create(
        public_id=GEMINI,
        provider=provider,
        upstream_model=UPSTREAM_GEMINI,
        context_length=1048576,
        max_output_tokens=8192,
        reasoning=True,
        input_price_per_million=1,
        output_price_per_million=2,
    )


@pytest.fixture
def chat(transactional_db: None, fake_upstream: FakeUpstream) -> Iterator[Caller]:
    """The browser chat as the gateway's caller (no key), with the model at the fake upstream."""
    user = User.objects.create_user("carol", password="a-long-and-unusual-password")
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=5)
    LanguageModel.objects.create(public_id=MODEL, provider=provider, upstream_model="fake-small")
    yield Caller(user, None, UsageRecord.Source.CHAT)


@pytest.fixture
def live_gateway(gateway: Gateway, live_server: LiveServer) -> Gateway:
    """The same catalogue and key, served by the session's live server process."""
    return dataclasses.replace(gateway, live_url=live_server.url)


def wait_for_usage(count: int = 1, timeout: float = 10.0, **filters: object) -> list[UsageRecord]:
    """The ledger rows of finished calls once at least `count` exist (written just after answering)."""
    deadline = time.monotonic() + timeout
    while True:
        # A long call has a row while in flight (usage.ledger): it counts once its call ended.
        rows = list(UsageRecord.objects.filter(**filters).exclude(status=IN_FLIGHT).order_by("created_at", "pk"))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)
