"""Limits as /v1 clients see them: 429 in OpenAI's shape, x-ratelimit-* headers, the openai SDK.

The app is called in process with Redis as its counter store and the test's clock: remaining counts
and Retry-After are exact, and "recovers" means the clock moved by Retry-After, whatever the speed.
"""

from __future__ import annotations

import itertools
import re
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import LanguageModel, Provider
from core.clock import ManualClock
from tests.fake_upstream import FakeUpstream, Reply
from tests.inprocess import InProcessApp
from tests.scaleout.redis_server import RedisServer
from usage.models import Limit, UsageRecord

MODEL = "acme/limited"
MESSAGES = [{"role": "user", "content": "Say hello"}]
RESET = re.compile(r"^(\d+ms|\d+s|\d+m\d+s)$")


class Api:
    def __init__(self, app: InProcessApp, user: User, secret: str) -> None:
        self.app, self.user, self.secret = app, user, secret

    def post(self, body: dict[str, Any] | None = None) -> httpx.Response:
        payload = {"model": MODEL, "messages": MESSAGES, **(body or {})}
        headers = {"Authorization": f"Bearer {self.secret}"}
        return self.app.client().post("/v1/chat/completions", json=payload, headers=headers)

    def get(self, path: str) -> httpx.Response:
        return self.app.client().get(path, headers={"Authorization": f"Bearer {self.secret}"})

    def client(self, **kwargs: Any) -> openai.OpenAI:
        kwargs.setdefault("http_client", self.app.client())
        return openai.OpenAI(base_url=self.app.url + "/v1", api_key=self.secret, **kwargs)


@pytest.fixture
def api(
    app: InProcessApp, redis_server: RedisServer, fake_upstream: FakeUpstream, settings: Any, clock: ManualClock
) -> Api:
    redis_server.flush()
    settings.REDIS_URL = redis_server.url
    user = User.objects.create_user("alice", "alice@example.com", "correct-horse-battery-staple")
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=5)
    LanguageModel.objects.create(
        public_id=MODEL,
        provider=provider,
        upstream_model="fake",
        max_output_tokens=100,
        input_price_per_million=Decimal("1000"),
        output_price_per_million=Decimal("1000"),
    )
    _, secret = create_key(user, "tests")
    return Api(app, user, secret)


def test_every_answer_carries_both_ratelimit_trios(api: Api) -> None:
    Limit.objects.create(user=api.user, requests_per_minute=5, tokens_per_minute=10_000)
    answer = api.post({"max_tokens": 50})
    assert answer.status_code == 200
    assert answer.headers["x-ratelimit-limit-requests"] == "5"
    assert answer.headers["x-ratelimit-remaining-requests"] == "4"
    assert RESET.match(answer.headers["x-ratelimit-reset-requests"])
    assert answer.headers["x-ratelimit-limit-tokens"] == "10000"
    # Reserved before the call: the prompt estimate plus the 50 completion tokens asked for.
    assert 10_000 - 80 < int(answer.headers["x-ratelimit-remaining-tokens"]) <= 10_000 - 50
    assert RESET.match(answer.headers["x-ratelimit-reset-tokens"])

    streamed = api.post({"stream": True})
    assert streamed.status_code == 200
    assert streamed.headers["x-ratelimit-remaining-requests"] == "3"
    assert streamed.text.rstrip().endswith("data: [DONE]")

    invalid = api.post({"temperature": 7})  # refused before anything is reserved
    assert invalid.status_code == 400
    assert invalid.headers["x-ratelimit-limit-requests"] == "5"
    assert invalid.headers["x-ratelimit-remaining-requests"] == "3"


def test_the_models_endpoints_carry_the_ratelimit_headers_too(api: Api) -> None:
    Limit.objects.create(user=api.user, requests_per_minute=5, tokens_per_minute=10_000)
    listed = api.get("/v1/models")
    one = api.get(f"/v1/models/{MODEL}")
    missing = api.get("/v1/models/no-such-model")
    for answer, status in ((listed, 200), (one, 200), (missing, 404)):
        assert answer.status_code == status
        assert answer.headers["x-ratelimit-limit-requests"] == "5"
        assert answer.headers["x-ratelimit-limit-tokens"] == "10000"
        # Reading the catalogue spends nothing.
        assert answer.headers["x-ratelimit-remaining-requests"] == "5"


def test_over_the_request_limit_answers_429_in_openais_shape_then_recovers(
    api: Api, fake_upstream: FakeUpstream, clock: ManualClock
) -> None:
    Limit.objects.create(user=api.user, requests_per_minute=2)
    assert [api.post().status_code for _ in range(2)] == [200, 200]
    refused = api.post()
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert refused.headers["retry-after"] == "30"  # one of two requests refills in 60 s / 2
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(fake_upstream.chat_requests()) == 2  # nothing went upstream for the refused one
    clock.advance(29)
    assert api.post().status_code == 429
    clock.advance(1)
    recovered = api.post()
    assert recovered.status_code == 200
    assert recovered.headers["x-ratelimit-remaining-requests"] == "0"


def test_the_sdk_raises_rate_limit_error_and_its_retry_waits_for_retry_after(api: Api, clock: ManualClock) -> None:
    Limit.objects.create(user=api.user, requests_per_minute=60)  # Retry-After: 1 s
    for _ in range(59):
        assert api.post().status_code == 200
    api.client(max_retries=0).chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]

    with pytest.raises(openai.RateLimitError) as refused:
        api.client(max_retries=0).chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    assert refused.value.status_code == 429
    assert refused.value.code == "rate_limit_exceeded"

    seen: list[tuple[float, int, str | None]] = []

    def record(response: httpx.Response) -> None:
        seen.append((time.monotonic(), response.status_code, response.headers.get("retry-after")))
        if response.status_code == 429:
            # The SDK sleeps Retry-After seconds of real time; the limits count the test's clock.
            clock.advance(float(response.headers["retry-after"]))

    http_client = api.app.client(event_hooks={"response": [record]})
    completion = api.client(max_retries=2, http_client=http_client).chat.completions.create(
        model=MODEL,
        messages=MESSAGES,  # type: ignore[arg-type]
    )
    assert completion.choices[0].message.content
    statuses = [status for _, status, _ in seen]
    assert statuses[-1] == 200 and 429 in statuses
    for (at, status, retry_after), (next_at, _, _) in itertools.pairwise(seen):
        if status == 429:
            assert retry_after is not None
            assert next_at - at >= float(retry_after) - 0.05  # the SDK waited as told


def test_an_exhausted_budget_is_insufficient_quota_and_the_sdk_does_not_retry(api: Api) -> None:
    Limit.objects.create(user=api.user, budget_usd=Decimal("1"), budget_period="month")
    UsageRecord.objects.create(user=api.user, model_public_id=MODEL, cost=Decimal("1.5"), source="chat")
    seen: list[int] = []
    http_client = api.app.client(event_hooks={"response": [lambda r: seen.append(r.status_code)]})
    with pytest.raises(openai.RateLimitError) as refused:
        api.client(max_retries=3, http_client=http_client).chat.completions.create(
            model=MODEL,
            messages=MESSAGES,  # type: ignore[arg-type]
        )
    assert refused.value.code == "insufficient_quota"
    assert refused.value.type == "insufficient_quota"
    assert "monthly budget" in refused.value.message
    assert seen == [429]


def test_tokens_are_reserved_while_a_request_is_in_flight_and_given_back_after(
    api: Api, fake_upstream: FakeUpstream
) -> None:
    Limit.objects.create(user=api.user, tokens_per_minute=150)
    fake_upstream.queue(Reply(content="slow", first_delay=1.0))
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(api.post, {"max_tokens": 100})
        assert fake_upstream.wait_for_requests(1)
        refused = api.post({"max_tokens": 100})  # 2 x (prompt + 100) would not fit in 150
        assert slow.result().status_code == 200
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "tokens"
    assert refused.headers["x-ratelimit-limit-tokens"] == "150"
    assert int(refused.headers["retry-after"]) >= 1
    # The slow one used a few tokens of its 100+: the rest came back, so the same request fits now.
    assert api.post({"max_tokens": 100}).status_code == 200
