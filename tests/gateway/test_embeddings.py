"""POST /v1/embeddings with the openai SDK, in process, against the fake upstream's /embeddings."""

from __future__ import annotations

import base64
import struct

import openai
import pytest
from django.utils import timezone

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import LanguageModel
from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway.conftest import MODEL, Gateway, wait_for_usage
from tests.openai_schema import validate
from usage.models import Limit

pytestmark = pytest.mark.django_db(transaction=True)

EMBED = "acme/embed-small"


@pytest.fixture
def embed(gateway: Gateway) -> LanguageModel:
    return LanguageModel.objects.create(
        public_id=EMBED, provider=gateway.provider, upstream_model="fake-embed", kind="embedding", context_length=512
    )


def test_float_embeddings_come_back_one_per_input_with_usage_in_the_ledger(
    gateway: Gateway, embed: LanguageModel, fake_upstream: FakeUpstream
) -> None:
    answer = gateway.client().embeddings.create(model=EMBED, input=["a cat", "a dog sleeps"], encoding_format="float")
    assert [e.index for e in answer.data] == [0, 1] and len(answer.data[0].embedding) == 8
    assert answer.model == EMBED and answer.usage.prompt_tokens == 5
    validate(answer.model_dump(mode="json", exclude_unset=True), "CreateEmbeddingResponse")
    assert fake_upstream.last.path == "/v1/embeddings" and fake_upstream.last.body["model"] == "fake-embed"
    (row,) = wait_for_usage(1)
    assert (row.status, row.prompt_tokens, row.completion_tokens, row.model_public_id) == (200, 5, 0, EMBED)


def test_base64_embeddings_and_dimensions_pass_through(
    gateway: Gateway, embed: LanguageModel, fake_upstream: FakeUpstream
) -> None:
    http = gateway.http
    answer = http.post(
        "/v1/embeddings",
        headers=gateway.headers(),
        json={"model": EMBED, "input": [[1, 2, 3]], "encoding_format": "base64", "dimensions": 4},
    ).json()
    values = struct.unpack("<4f", base64.b64decode(answer["data"][0]["embedding"]))
    assert len(values) == 4 and fake_upstream.last.body["dimensions"] == 4


def test_without_usage_from_the_upstream_the_inputs_are_estimated_and_flagged(
    gateway: Gateway, embed: LanguageModel, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(usage=False))
    answer = gateway.client().embeddings.create(model=EMBED, input=[[5, 6, 7, 8]])
    assert answer.usage.prompt_tokens == 4  # a token list counts its tokens
    (row,) = wait_for_usage(1)
    assert row.usage_estimated and row.prompt_tokens == 4


def test_a_chat_model_is_refused_naming_the_endpoint_to_use(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().embeddings.create(model=MODEL, input="hello")
    assert caught.value.body["param"] == "model" and "/v1/chat/completions" in caught.value.message  # type: ignore[index]
    assert fake_upstream.requests == []


def test_bad_input_is_a_400_naming_the_param(gateway: Gateway, embed: LanguageModel) -> None:
    answer = gateway.http.post("/v1/embeddings", headers=gateway.headers(), json={"model": EMBED, "input": []})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "input"


def test_input_tokens_count_against_the_token_limit(gateway: Gateway, embed: LanguageModel) -> None:
    Limit.objects.create(user=gateway.user, tokens_per_minute=10)
    gateway.client().embeddings.create(model=EMBED, input="one two three")
    with pytest.raises(openai.RateLimitError):
        gateway.client().embeddings.create(model=EMBED, input="word " * 40)


def test_another_users_key_is_their_own_and_a_revoked_key_is_refused(gateway: Gateway, embed: LanguageModel) -> None:
    bob = User.objects.create_user("bob", "bob@example.com", "correct-horse-battery-staple")
    key, secret = create_key(bob, "bob's")
    gateway.client(secret).embeddings.create(model=EMBED, input="hi")
    (row,) = wait_for_usage(1)
    assert row.user_id == bob.pk
    key.revoked_at = timezone.now()
    key.save()
    with pytest.raises(openai.AuthenticationError):
        gateway.client(secret).embeddings.create(model=EMBED, input="hi")
