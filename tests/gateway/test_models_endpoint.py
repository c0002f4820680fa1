"""GET /v1/models and /v1/models/{id}: enabled models only, ids with slashes, catalogue fields."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from accounts.keys import create_key
from catalogue.models import LanguageModel, Provider
from tests.gateway.conftest import MODEL, Gateway
from tests.openai_schema import validate


@pytest.fixture
def catalogue(gateway: Gateway) -> Gateway:
    LanguageModel.objects.create(public_id="plain-model", provider=gateway.provider, upstream_model="x")
    LanguageModel.objects.create(public_id="acme/hidden", provider=gateway.provider, upstream_model="x", enabled=False)
    off = Provider.objects.create(name="off", base_url="http://127.0.0.1:9/v1", enabled=False)
    LanguageModel.objects.create(public_id="off/model", provider=off, upstream_model="x")
    return gateway


def test_the_list_shows_enabled_models_with_their_catalogue_fields(catalogue: Gateway) -> None:
    page = catalogue.client().models.list()
    validate(page.model_dump(exclude_unset=True), "ListModelsResponse")
    assert [m.id for m in page.data] == [MODEL, "plain-model"]
    raw = catalogue.http.get(catalogue.base_url + "/models", headers=catalogue.headers()).json()
    first = raw["data"][0]
    assert first == {
        "id": MODEL,
        "object": "model",
        "created": int(catalogue.model.created_at.timestamp()),
        "owned_by": "acme",
        "context_length": 8192,
        "max_output_tokens": 1000,
        "kind": "chat",
        "is_chat": True,
        "is_text": False,
        "capabilities": {"vision": False, "tools": True, "reasoning": False, "json_output": True},
        "description": "A small test model",
        "category": "chat",
        "creator": "",
        "license_name": "",
        "license_url": "",
        "docs_url": "",
        "prompt_guide_url": "",
        "name": MODEL,
        "max_context_length": 8192,
        "creator_logo_url": "",
        "censorship": "",
        "public_endpoint_pricing": "$0.001 / 1k input tokens, $0.002 / 1k output tokens",
        "pricing": {"input_per_million": "1", "output_per_million": "2"},
    }
    assert raw["data"][1]["owned_by"] == "fake"  # the provider, when the catalogue names no owner


def test_a_model_with_a_slash_in_its_id_can_be_retrieved(catalogue: Gateway) -> None:
    model = catalogue.client().models.retrieve(MODEL)
    validate(model.model_dump(exclude_unset=True), "Model")
    assert model.id == MODEL
    encoded = catalogue.http.get(catalogue.base_url + "/models/acme%2Fchat-small", headers=catalogue.headers())
    assert encoded.status_code == 200 and encoded.json()["id"] == MODEL


@pytest.mark.parametrize("model_id", ["acme/hidden", "off/model", "acme/none"])
def test_disabled_and_unknown_models_are_not_found(catalogue: Gateway, model_id: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        catalogue.client().models.retrieve(model_id)
    validate(caught.value.response.json(), "ErrorResponse")
    assert caught.value.response.json()["error"]["code"] == "model_not_found"


def test_the_models_need_a_key(catalogue: Gateway) -> None:
    assert catalogue.http.get(catalogue.base_url + "/models").status_code == 401
    with pytest.raises(openai.AuthenticationError):
        catalogue.client("sk-" + "n" * 43).models.list()


def test_a_scoped_key_sees_only_its_models(catalogue: Gateway) -> None:
    _key, secret = create_key(catalogue.user, "scoped", allowed_models=["plain-model"])
    assert [m.id for m in catalogue.client(secret).models.list().data] == ["plain-model"]
    with pytest.raises(openai.PermissionDeniedError):
        catalogue.client(secret).models.retrieve(MODEL)


def test_the_catalogues_names_logos_and_readable_prices_are_listed(catalogue: Gateway) -> None:
    # Saved (not a queryset update): the catalogue's signals empty the rights cache on every change.
    plain_model = LanguageModel.objects.get(public_id="plain-model")
    plain_model.display_name, plain_model.creator_logo_url = "Plain Model", "https://example.com/logo.png"
    plain_model.censorship = "uncensored"
    plain_model.input_price_per_million = plain_model.output_price_per_million = Decimal("0.3")
    plain_model.save()
    plain = catalogue.client().models.retrieve("plain-model").model_extra or {}
    assert plain["name"] == "Plain Model" and plain["creator_logo_url"] == "https://example.com/logo.png"
    assert plain["censorship"] == "uncensored" and plain["public_endpoint_pricing"] == "$0.0003 / 1k tokens"
    plain_model.input_price_per_million = plain_model.output_price_per_million = Decimal(0)
    plain_model.save()
    assert (catalogue.client().models.retrieve("plain-model").model_extra or {})["public_endpoint_pricing"] == "free"


def test_a_gemini_client_gets_the_same_catalogue_in_googles_shape(catalogue: Gateway) -> None:
    google = catalogue.http.get(catalogue.base_url + "/models", headers={"x-goog-api-key": catalogue.secret}).json()
    beta = catalogue.http.get(catalogue.url + "/v1beta/models", headers={"x-goog-api-key": catalogue.secret}).json()
    assert google == beta
    assert [m["name"] for m in beta["models"]] == [f"models/{MODEL}", "models/plain-model"]
    first = beta["models"][0]
    assert (first["inputTokenLimit"], first["outputTokenLimit"]) == (8192, 1000)
    assert first["supportedGenerationMethods"] == ["generateContent", "streamGenerateContent", "countTokens"]
    paged = catalogue.http.get(
        catalogue.url + "/v1beta/models?pageSize=1", headers={"x-goog-api-key": catalogue.secret}
    )
    assert [m["name"] for m in paged.json()["models"]] == [f"models/{MODEL}"] and paged.json()["nextPageToken"] == "1"
    rest = catalogue.http.get(
        catalogue.url + "/v1beta/models?pageSize=1&pageToken=1", headers={"x-goog-api-key": catalogue.secret}
    ).json()
    assert [m["name"] for m in rest["models"]] == ["models/plain-model"] and "nextPageToken" not in rest
    one = catalogue.http.get(catalogue.url + f"/v1beta/models/{MODEL}", headers={"x-goog-api-key": catalogue.secret})
    assert one.json()["name"] == f"models/{MODEL}"


def test_a_gemini_client_with_a_scoped_key_sees_only_its_models(catalogue: Gateway) -> None:
    _key, secret = create_key(catalogue.user, "scoped", allowed_models=["plain-model"])
    listed = catalogue.http.get(catalogue.url + "/v1beta/models", headers={"x-goog-api-key": secret}).json()
    assert [m["name"] for m in listed["models"]] == ["models/plain-model"]
    refused = catalogue.http.get(catalogue.url + f"/v1beta/models/{MODEL}", headers={"x-goog-api-key": secret})
    assert refused.status_code == 403 and refused.json()["error"]["status"] == "PERMISSION_DENIED"
