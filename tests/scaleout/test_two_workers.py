"""Several workers behind one address work as one service: limits hold, replies follow sockets."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.test import Client
from websockets.sync.client import ClientConnection, connect

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import LanguageModel, Provider
from conversations.models import Conversation
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer
from tests.scaleout.conftest import Cluster
from usage.models import Limit, UsageRecord

pytestmark = pytest.mark.timeout(120)

MODEL = "acme/shared"
MESSAGES = [{"role": "user", "content": "Say hello"}]
WORDS = " ".join(f"word{i}" for i in range(30))


@pytest.fixture
def model(fake_upstream: FakeUpstream, transactional_db: None) -> LanguageModel:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=10)
    return LanguageModel.objects.create(
        public_id=MODEL,
        provider=provider,
        upstream_model="fake",
        max_output_tokens=100,
        input_price_per_million=Decimal("1000"),  # a token costs $0.001
        output_price_per_million=Decimal("1000"),
    )


@pytest.fixture
def alice_key(alice: User) -> str:
    return create_key(alice, "scale-out")[1]


def _post(server: LiveServer, secret: str, body: dict[str, Any] | None = None) -> httpx.Response:
    payload = {"model": MODEL, "messages": MESSAGES, **(body or {})}
    return httpx.post(
        server.url + "/v1/chat/completions", json=payload, headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )


def test_a_rate_limit_holds_across_both_workers(
    shared: Cluster, model: LanguageModel, alice: User, alice_key: str
) -> None:
    Limit.objects.create(user=alice, requests_per_minute=4)
    answers = [_post(server, alice_key) for server in (shared.a, shared.b, shared.a, shared.b)]
    assert [a.status_code for a in answers] == [200] * 4
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers] == ["3", "2", "1", "0"]
    for server in (shared.a, shared.b):
        refused = _post(server, alice_key)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"


def test_parallel_requests_on_both_workers_overshoot_the_budget_by_at_most_one(
    shared: Cluster, model: LanguageModel, alice: User, alice_key: str, fake_upstream: FakeUpstream
) -> None:
    Limit.objects.create(user=alice, budget_usd=Decimal("1.00"), budget_period="day")
    UsageRecord.objects.create(user=alice, model_public_id=MODEL, cost=Decimal("0.90"), source="chat")
    fake_upstream.default = Reply(content=" ".join(["w"] * 20), chunks=20)  # ~22 of the 30 tokens reserved
    body = {"max_tokens": 20}
    one_request = model.cost(10, 20)  # the largest a request may cost: its reservation, $0.03

    servers = [shared.a, shared.b] * 12
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda server: _post(server, alice_key, body), servers))
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) >= 1
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 429} == {"insufficient_quota"}

    spent = spent_once_written(statuses.count(200), user=alice)
    assert Decimal("1.00") - one_request < spent <= Decimal("1.00") + one_request


def spent_once_written(served: int, **rows: Any) -> Decimal:
    """What the ledger's rows matching `rows` cost, once the `served` answers' rows are written."""
    deadline = time.monotonic() + 30
    while UsageRecord.objects.filter(status=200, **rows).count() < served and time.monotonic() < deadline:
        time.sleep(0.05)
    return sum((r.cost for r in UsageRecord.objects.filter(**rows)), Decimal(0))


def _session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _socket(server: LiveServer, conversation: Conversation, cookie: str) -> ClientConnection:
    return connect(
        f"{server.ws_url}/ws/conversations/{conversation.pk}/",
        additional_headers={"Cookie": cookie, "Origin": server.url},
        open_timeout=10,
    )


def _frames(socket: ClientConnection, until: Any, timeout: float = 30) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
        frames.append(frame)
        if until(frame):
            return frames


def _finished(frame: dict[str, Any]) -> bool:
    return (
        frame["type"] == "message"
        and frame["message"]["role"] == "assistant"
        and frame["message"]["status"] != "streaming"
    )


def test_a_reply_started_on_one_worker_is_followed_from_a_socket_on_the_other(
    shared: Cluster, model: LanguageModel, alice: User, fake_upstream: FakeUpstream
) -> None:
    conversation = Conversation.objects.create(owner=alice, model=model)
    cookie = _session_cookie(alice)
    upstream_reply = Reply(content=WORDS, chunks=30, hold_after_chunks=10)  # held until B has joined
    fake_upstream.queue(upstream_reply)

    with _socket(shared.a, conversation, cookie) as on_a:
        _frames(on_a, lambda f: f["type"] == "messages")
        on_a.send(json.dumps({"type": "send", "content": "Count for me"}))
        _frames(on_a, lambda f: f["type"] == "delta")  # A's generation is under way

        with _socket(shared.b, conversation, cookie) as on_b:
            # Released once B follows the reply live (its first snapshot or delta), so the rest streams to it.
            frames = _frames(on_b, lambda f: f["type"] in ("snapshot", "delta"))
            upstream_reply.released.set()
            frames += _frames(on_b, _finished)
        a_rest = _frames(on_a, _finished)

    loaded = frames[0]
    assert loaded["type"] == "messages"
    streaming = [m for m in loaded["messages"] if m["role"] == "assistant"]
    assert streaming and streaming[0]["status"] == "streaming"
    reply_id = streaming[0]["id"]

    # B rebuilds the text from the stored part, A's snapshot and A's deltas, all through Redis.
    text = streaming[0]["content"]
    live = 0
    # As the page does (static/js/chat/store.js): the snapshot and the group's deltas travel on
    # different channels, so either may come first; a frame already known is skipped, one beyond
    # the text so far waits for the snapshot, a shorter snapshot is older than the text.
    for frame in frames[1:]:
        if frame["type"] == "snapshot" and frame["id"] == reply_id:
            live += 1
            if len(frame["content"]) >= len(text):
                text = frame["content"]
        elif frame["type"] == "delta" and frame["id"] == reply_id:
            live += 1
            if len(text) >= frame["offset"] and frame["offset"] + len(frame["text"]) > len(text):
                text = text[: frame["offset"]] + frame["text"]
    assert live > 0, "the socket on B received A's reply while it was being written"
    assert frames[-1]["message"]["status"] == "complete"
    assert text == frames[-1]["message"]["content"] == WORDS
    assert a_rest[-1]["message"]["content"] == WORDS


def test_a_socket_open_across_a_redis_restart_gets_its_next_reply(
    shared: Cluster, model: LanguageModel, alice: User, fake_upstream: FakeUpstream
) -> None:
    conversation = Conversation.objects.create(owner=alice, model=model)
    fake_upstream.queue(Reply(content="after the restart", chunks=3))

    with _socket(shared.a, conversation, _session_cookie(alice)) as socket:
        _frames(socket, lambda f: f["type"] == "messages")
        shared.redis.flush()  # what a Redis restarted without persistence knows: nothing, the groups included
        socket.send(json.dumps({"type": "send", "content": "Still there?"}))
        frames = _frames(socket, _finished)
    assert frames[-1]["message"]["status"] == "complete"
    assert frames[-1]["message"]["content"] == "after the restart"
