"""Fixtures for the gateway: a catalogue pointing at the fake upstream, keys, SDK clients.

The gateway runs in the session's live server (tests/live_server.py), so tests here need
`transactional_db`; `wait_for_usage` polls the ledger, which the server writes after answering.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest

from accounts.keys import create_key
from accounts.models import ApiKey, User
from gateway.models import LanguageModel, Provider, UsageRecord
from tests.fake_upstream import FakeUpstream
from tests.live_server import LiveServer

MODEL = "acme/chat-small"  # a public id with a slash, as catalogues often have
UPSTREAM_MODEL = "fake-small"


@dataclass
class Gateway:
    url: str
    provider: Provider
    model: LanguageModel
    user: User
    key: ApiKey
    secret: str

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def client(self, secret: str | None = None, **kwargs: object) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=secret or self.secret, max_retries=0, **kwargs)  # type: ignore[arg-type]

    def async_client(self, secret: str | None = None) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=secret or self.secret, max_retries=0)

    def headers(self, secret: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret or self.secret}"}


@pytest.fixture
def gateway(transactional_db: None, live_server: LiveServer, fake_upstream: FakeUpstream) -> Iterator[Gateway]:
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
    yield Gateway(live_server.url, provider, model, user, key, secret)
    settle_ledger()


def settle_ledger(quiet: float = 0.1, timeout: float = 3.0) -> None:
    """Wait until the server stopped writing usage rows.

    It writes them just after answering; flushing the database for the next test meanwhile
    could deadlock with that insert.
    """
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        state = (UsageRecord.objects.count(), list(ApiKey.objects.values_list("last_used_at", flat=True)))
        if state == last:
            return
        last = state
        time.sleep(quiet)


def wait_for_usage(count: int = 1, timeout: float = 10.0, **filters: object) -> list[UsageRecord]:
    """The ledger rows once at least `count` exist (the server writes them just after answering)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = list(UsageRecord.objects.filter(**filters).order_by("created_at", "pk"))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)
