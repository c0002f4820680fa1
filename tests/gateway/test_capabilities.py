"""Models say what they are and can do: /v1/models shows it, requests asking for more are a 400 naming
the param before anything goes upstream, and every upstream gets an output cap under the name it knows."""

from __future__ import annotations

from io import StringIO
from typing import Any

import openai
import pytest
from django.core.management import CommandError, call_command

from catalogue.models import LanguageModel, Provider
from tests.fake_upstream import FakeUpstream
from tests.gateway.conftest import MODEL, Gateway

pytestmark = pytest.mark.django_db(transaction=True)

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}


def refused(gateway: Gateway, **fields: Any) -> openai.BadRequestError:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().chat.completions.create(**body)
    return caught.value


def set_model(gateway: Gateway, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(gateway.model, name, value)
    gateway.model.save()


def test_images_to_a_model_without_vision_are_refused_naming_messages(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    error = refused(gateway, messages=[{"role": "user", "content": [{"type": "text", "text": "What?"}, IMAGE]}])
    assert error.status_code == 400 and error.body["param"] == "messages"  # type: ignore[index]
    assert "does not accept images" in error.message and fake_upstream.chat_requests() == []

    set_model(gateway, vision=True)
    answer = gateway.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": [{"type": "text", "text": "What?"}, IMAGE]}]
    )
    assert answer.choices[0].message.content and fake_upstream.last.body["messages"][0]["content"][1] == IMAGE


def test_tools_to_a_model_without_tools_are_refused_and_false_still_means_none(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    set_model(gateway, tools=False)
    error = refused(gateway, tools=[TOOL])
    assert error.body["param"] == "tools" and "does not accept tools" in error.message  # type: ignore[index]
    answer = gateway.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], extra_body={"tools": False}
    )
    assert answer.choices[0].message.content and "tools" not in fake_upstream.last.body


def test_json_output_to_a_model_without_it_is_a_400_not_an_upstream_traceback(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    set_model(gateway, json_output=False)
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    error = refused(gateway, response_format=schema)
    assert error.body["param"] == "response_format" and "json_schema" in error.message  # type: ignore[index]
    assert fake_upstream.chat_requests() == []
    gateway.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], response_format={"type": "text"}
    )


@pytest.mark.parametrize(("kind", "endpoint"), [("text", "/v1/completions"), ("embedding", "/v1/embeddings")])
def test_a_model_of_another_kind_on_chat_completions_names_the_endpoint_to_use(
    gateway: Gateway, kind: str, endpoint: str
) -> None:
    set_model(gateway, kind=kind)
    error = refused(gateway)
    assert error.body["param"] == "model" and endpoint in error.message  # type: ignore[index]


def test_without_a_cap_from_the_client_the_upstream_gets_the_models_output_limit(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    gateway.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert fake_upstream.last.body["max_tokens"] == 1000
    assert "max_completion_tokens" not in fake_upstream.last.body


def test_max_completion_tokens_reaches_an_upstream_that_knows_only_max_tokens(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    stream = gateway.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_completion_tokens=10, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert fake_upstream.last.body["max_tokens"] == 10 and "max_completion_tokens" not in fake_upstream.last.body


def test_a_provider_taking_max_completion_tokens_gets_the_cap_under_that_name(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    provider = Provider.objects.get(pk=gateway.provider.pk)
    provider.output_cap_param = Provider.OutputCapParam.MAX_COMPLETION_TOKENS
    provider.save()
    gateway.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=7)
    assert fake_upstream.last.body["max_completion_tokens"] == 7 and "max_tokens" not in fake_upstream.last.body


def test_models_list_what_each_is_and_can_do_and_filter_by_kind(gateway: Gateway) -> None:
    set_model(gateway, vision=True, creator="Acme", license_name="Apache-2.0", docs_url="https://acme.test/docs")
    LanguageModel.objects.create(
        public_id="acme/embed", provider=gateway.provider, upstream_model="e", kind="embedding"
    )
    http = gateway.http
    listed = http.get("/v1/models", headers=gateway.headers()).json()["data"]
    card = next(m for m in listed if m["id"] == MODEL)
    assert (card["kind"], card["is_chat"], card["is_text"]) == ("chat", True, False)
    assert card["capabilities"] == {"vision": True, "tools": True, "reasoning": False, "json_output": True}
    assert (card["creator"], card["license_name"], card["docs_url"]) == ("Acme", "Apache-2.0", "https://acme.test/docs")
    embeddings = http.get("/v1/models?kind=embedding", headers=gateway.headers()).json()["data"]
    assert [m["id"] for m in embeddings] == ["acme/embed"]
    bad = http.get("/v1/models?kind=robot", headers=gateway.headers())
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "kind"


def test_models_add_takes_the_kind_capabilities_and_links(gateway: Gateway) -> None:
    out = StringIO()
    call_command(
        "models", "add", "acme/vision", "--provider", gateway.provider.name, "--kind", "chat", "--vision",
        "--no-tools", "--creator", "Acme", "--license-url", "https://acme.test/license", stdout=out,
    )  # fmt: skip
    model = LanguageModel.objects.get(public_id="acme/vision")
    assert model.capabilities == {"vision": True, "tools": False, "reasoning": False, "json_output": True}
    assert (model.creator, model.license_url) == ("Acme", "https://acme.test/license")
    with pytest.raises(CommandError, match="license_url"):
        call_command("models", "add", "acme/vision", "--provider", gateway.provider.name, "--license-url", "nope")
