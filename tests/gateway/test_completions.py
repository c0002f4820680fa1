"""POST /v1/completions with the openai SDK, in process, against the fake upstream's /completions."""

from __future__ import annotations

import httpx
import openai
import pytest

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import LanguageModel
from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway.conftest import MODEL, Gateway, wait_for_usage
from tests.openai_schema import validate, validate_completion_chunk
from usage.models import Limit

pytestmark = pytest.mark.django_db(transaction=True)

TEXT = "acme/text-small"


@pytest.fixture
def text(gateway: Gateway) -> LanguageModel:
    return LanguageModel.objects.create(
        public_id=TEXT,
        provider=gateway.provider,
        upstream_model="fake-text",
        kind="text",
        context_length=2048,
        max_output_tokens=300,
        input_price_per_million=1,
        output_price_per_million=2,
    )


def test_a_completion_comes_back_with_our_model_id_and_its_ledger_row(
    gateway: Gateway, text: LanguageModel, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="upon a time"))
    answer = gateway.client().completions.create(model=TEXT, prompt="Once", max_tokens=20, suffix=".")
    validate(answer.model_dump(mode="json", exclude_unset=True), "CreateCompletionResponse")
    assert answer.model == TEXT and answer.choices[0].text == "upon a time."
    sent = fake_upstream.last
    assert sent.path == "/v1/completions" and sent.body["model"] == "fake-text" and sent.body["max_tokens"] == 20
    assert "stream" not in sent.body
    (row,) = wait_for_usage(1)
    assert (row.status, row.model_public_id, row.stream, row.usage_estimated) == (200, TEXT, False, False)
    assert (row.prompt_tokens, row.completion_tokens) == (1, 3)


def test_without_a_cap_the_upstream_gets_the_models_output_limit_as_max_tokens(
    gateway: Gateway, text: LanguageModel, fake_upstream: FakeUpstream
) -> None:
    gateway.client().completions.create(model=TEXT, prompt="Hi")
    assert fake_upstream.last.body["max_tokens"] == 300


def test_a_streamed_completion_gives_valid_chunks_and_the_usage_chunk_when_asked(
    gateway: Gateway, text: LanguageModel, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="one two three"))
    chunks = list(
        gateway.client().completions.create(
            model=TEXT, prompt=["count", "again"], stream=True, stream_options={"include_usage": True}
        )
    )
    for chunk in chunks:
        validate_completion_chunk(chunk.model_dump(mode="json", exclude_unset=True))
        assert chunk.model == TEXT
    assert "".join(c.choices[0].text for c in chunks if c.choices and c.choices[0].index == 0) == "one two three"
    assert {c.choices[0].index for c in chunks if c.choices} == {0, 1}
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens == 6
    (row,) = wait_for_usage(1)
    assert (row.status, row.stream, row.completion_tokens, row.prompt_tokens) == (200, True, 6, 2)


def test_a_stream_without_include_usage_has_no_usage_chunk_but_a_ledger_row(
    gateway: Gateway, text: LanguageModel, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="one two"))
    chunks = list(gateway.client().completions.create(model=TEXT, prompt="count", stream=True))
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)
    assert fake_upstream.last.body["stream_options"] == {"include_usage": True}  # ours, for the ledger
    (row,) = wait_for_usage(1)
    assert row.completion_tokens == 2 and not row.usage_estimated


def test_without_usage_from_the_upstream_it_is_estimated_and_flagged(
    gateway: Gateway, text: LanguageModel, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="a fairly long answer of several words", usage=False))
    answer = gateway.client().completions.create(model=TEXT, prompt="Say something")
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    (row,) = wait_for_usage(1)
    assert row.usage_estimated and row.completion_tokens == answer.usage.completion_tokens


def test_a_chat_model_is_refused_naming_the_endpoint_to_use(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().completions.create(model=MODEL, prompt="Hello")
    assert caught.value.body["param"] == "model" and "/v1/chat/completions" in caught.value.message  # type: ignore[index]
    assert fake_upstream.requests == []
    (row,) = wait_for_usage(1)
    assert row.status == 400


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "x", "max_tokens": 301}, "max_tokens"),
        ({"prompt": "x", "n": 0}, "n"),
        ({"prompt": []}, "prompt"),
        ({"prompt": "x", "stream_options": {"include_usage": True}}, "stream_options"),
        ({"prompt": "x", "temperature": "hot"}, "temperature"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_param(
    gateway: Gateway, text: LanguageModel, fake_upstream: FakeUpstream, body: dict[str, object], param: str
) -> None:
    answer = gateway.http.post("/v1/completions", headers=gateway.headers(), json={"model": TEXT, **body})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == param
    assert fake_upstream.requests == []


def test_an_upstream_failure_mid_stream_ends_the_stream_with_an_error_event(
    gateway: Gateway, text: LanguageModel, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="one two three four", fail_after_chunks=2))
    with gateway.http.stream(
        "POST", "/v1/completions", headers=gateway.headers(), json={"model": TEXT, "prompt": "x", "stream": True}
    ) as answer:
        body = answer.read().decode()
    assert answer.status_code == 200 and '"error"' in body and body.rstrip().endswith("data: [DONE]")
    (row,) = wait_for_usage(1)
    assert row.status == 502


def test_another_users_key_has_its_own_limits_and_ledger(gateway: Gateway, text: LanguageModel) -> None:
    Limit.objects.create(user=gateway.user, requests_per_minute=1)
    gateway.client().completions.create(model=TEXT, prompt="Hi")
    with pytest.raises(openai.RateLimitError):
        gateway.client().completions.create(model=TEXT, prompt="Hi")
    bob = User.objects.create_user("bob", "bob@example.com", "correct-horse-battery-staple")
    _key, secret = create_key(bob, "bob's")
    gateway.client(secret).completions.create(model=TEXT, prompt="Hi")
    rows = wait_for_usage(3)
    assert [(r.user_id, r.status) for r in rows] == [(gateway.user.pk, 200), (gateway.user.pk, 429), (bob.pk, 200)]


def test_a_client_leaving_a_stream_closes_the_upstream_request(
    text: LanguageModel, live_gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content=" ".join(["word"] * 200), delay=0.05))
    body = {"model": TEXT, "prompt": "Talk", "stream": True}
    with (
        httpx.Client(timeout=60) as client,
        client.stream(
            "POST", live_gateway.base_url + "/completions", json=body, headers=live_gateway.headers()
        ) as stream,
    ):
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if line.startswith("data: {"):
                break  # got a chunk; leave with the upstream still talking
    assert fake_upstream.last.disconnected.wait(timeout=10), "the upstream request stayed open"
    (row,) = wait_for_usage(1)
    assert row.status == 499 and row.error_code == "client_disconnected"
