"""GET /v1/models and /v1/models/{id}: enabled models only, ids with slashes, catalogue fields."""

from __future__ import annotations

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
