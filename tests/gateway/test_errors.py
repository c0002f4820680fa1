"""Every error of /v1 in OpenAI's shape, mapped to the openai SDK's exception classes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import openai
import pytest
from django.utils import timezone

from accounts.keys import create_key, revoke
from accounts.models import User
from catalogue.models import LanguageModel, Provider
from gateway import upstream
from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway.conftest import MODEL, Gateway
from tests.live_server import free_port
from tests.openai_schema import validate

MESSAGES: Any = [{"role": "user", "content": "hi"}]


def error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    validate(body, "ErrorResponse")
    return dict(body["error"])


def call(gateway: Gateway, secret: str | None = None, **fields: Any) -> Any:
    return gateway.client(secret).chat.completions.create(**{"model": MODEL, "messages": MESSAGES, **fields})


# --- 401 ---------------------------------------------------------------------------------------


def test_a_request_without_a_key_is_refused(gateway: Gateway) -> None:
    response = gateway.http.post(gateway.base_url + "/chat/completions", json={"model": MODEL, "messages": MESSAGES})
    assert response.status_code == 401
    validate(response.json(), "ErrorResponse")
    assert response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("secret", ["sk-" + "x" * 43, "not-a-key", "Bearer"])
def test_an_unknown_key_is_refused(gateway: Gateway, fake_upstream: FakeUpstream, secret: str) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        call(gateway, secret)
    assert error_of(caught.value)["code"] == "invalid_api_key"
    assert not fake_upstream.chat_requests()


def test_a_revoked_key_fails_on_the_very_next_call(gateway: Gateway) -> None:
    call(gateway)
    revoke(gateway.key)
    with pytest.raises(openai.AuthenticationError):
        call(gateway)


def test_an_expired_key_is_refused(gateway: Gateway) -> None:
    _key, secret = create_key(gateway.user, "old", expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(openai.AuthenticationError):
        call(gateway, secret)


def test_the_key_of_an_inactive_user_is_refused(gateway: Gateway) -> None:
    User.objects.filter(pk=gateway.user.pk).update(is_active=False)
    with pytest.raises(openai.AuthenticationError):
        call(gateway)


def test_a_stored_hash_presented_as_a_key_is_refused(gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError):
        call(gateway, gateway.key.key_hash)


def test_the_key_is_never_echoed_in_the_error(gateway: Gateway) -> None:
    wrong = "sk-" + "Q" * 43
    with pytest.raises(openai.AuthenticationError) as caught:
        call(gateway, wrong)
    assert wrong not in caught.value.response.text


# --- 404 / 403 ---------------------------------------------------------------------------------


def test_an_unknown_model_is_not_found(gateway: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        call(gateway, model="acme/nope")
    assert error_of(caught.value)["code"] == "model_not_found"


def test_a_disabled_model_or_provider_is_not_found(gateway: Gateway) -> None:
    LanguageModel.objects.create(public_id="acme/off", provider=gateway.provider, upstream_model="x", enabled=False)
    off = Provider.objects.create(name="off", base_url="http://127.0.0.1:9/v1", enabled=False)
    LanguageModel.objects.create(public_id="acme/orphan", provider=off, upstream_model="x")
    for model in ("acme/off", "acme/orphan"):
        with pytest.raises(openai.NotFoundError):
            call(gateway, model=model)


def test_a_key_scoped_to_other_models_is_refused_with_403(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    _key, secret = create_key(gateway.user, "scoped", allowed_models=["acme/other"])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        call(gateway, secret)
    assert MODEL in error_of(caught.value)["message"]
    assert not fake_upstream.chat_requests()


# --- 400 / 413 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"temperature": 9}, "temperature"),
        ({"n": 0}, "n"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
    ],
)
def test_an_invalid_request_is_a_400_naming_the_param(gateway: Gateway, fields: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        call(gateway, **fields)
    error = error_of(caught.value)
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_asking_for_more_output_than_the_model_gives_names_the_limit(gateway: Gateway, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        call(gateway, **{param: 1001})
    error = error_of(caught.value)
    assert error["param"] == param and "1000" in error["message"]
    call(gateway, **{param: 1000})


def test_a_body_that_is_not_json_is_a_400(gateway: Gateway) -> None:
    response = gateway.http.post(
        gateway.base_url + "/chat/completions", content=b"{not json", headers=gateway.headers()
    )
    assert response.status_code == 400
    validate(response.json(), "ErrorResponse")
    response = gateway.http.post(gateway.base_url + "/chat/completions", json=[1, 2], headers=gateway.headers())
    assert response.status_code == 400


def test_a_body_over_the_size_limit_is_a_413(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    big = {"model": MODEL, "messages": [{"role": "user", "content": "x" * (8 * 1024 * 1024)}]}
    response = gateway.http.post(
        gateway.base_url + "/chat/completions", json=big, headers=gateway.headers(), timeout=60
    )
    assert response.status_code == 413
    validate(response.json(), "ErrorResponse")
    assert response.headers["x-request-id"].startswith("req_")
    assert not fake_upstream.chat_requests()


def test_a_chunked_body_over_the_size_limit_is_a_413_too(live_gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    gateway = live_gateway

    def pieces() -> Iterator[bytes]:
        yield b'{"model": "' + MODEL.encode() + b'", "messages": [{"role": "user", "content": "'
        for _ in range(9):
            yield b"x" * (1024 * 1024)
        yield b'"}]}'

    response = httpx.post(
        gateway.base_url + "/chat/completions", content=pieces(), headers=gateway.headers(), timeout=60
    )
    assert response.status_code == 413
    validate(response.json(), "ErrorResponse")
    assert not fake_upstream.chat_requests()


def test_other_methods_and_paths_under_v1_answer_in_the_error_shape(gateway: Gateway) -> None:
    response = gateway.http.get(gateway.base_url + "/chat/completions", headers=gateway.headers())
    assert response.status_code == 405
    validate(response.json(), "ErrorResponse")
    response = gateway.http.post(gateway.base_url + "/audio/speech", json={}, headers=gateway.headers())
    assert response.status_code == 404
    validate(response.json(), "ErrorResponse")


# --- upstream faults ---------------------------------------------------------------------------


def test_an_unreachable_only_upstream_is_a_503_with_retry_after(gateway: Gateway) -> None:
    Provider.objects.filter(pk=gateway.provider.pk).update(base_url=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(openai.InternalServerError) as caught:
        call(gateway)
    assert caught.value.status_code == 503
    assert error_of(caught.value)["code"] == "upstream_unavailable"
    assert caught.value.response.headers["retry-after"] == "5"  # the first cooldown


def test_a_silent_upstream_is_a_504_when_no_attempt_is_left(
    gateway: Gateway, fake_upstream: FakeUpstream, settings: Any
) -> None:
    settings.ROUTING_MAX_ATTEMPTS = 1
    Provider.objects.filter(pk=gateway.provider.pk).update(read_timeout=0.5)
    fake_upstream.queue(Reply(hang=True))
    with pytest.raises(openai.InternalServerError) as caught:
        call(gateway)
    assert caught.value.status_code == 504
    assert error_of(caught.value)["code"] == "upstream_timeout"


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, openai.BadRequestError),
        (404, openai.NotFoundError),
        (422, openai.UnprocessableEntityError),
        (429, openai.RateLimitError),
    ],
)
@pytest.mark.usefixtures("one_attempt")
def test_an_upstream_4xx_keeps_its_status_and_message(
    gateway: Gateway, fake_upstream: FakeUpstream, status: int, exception: type[openai.APIStatusError]
) -> None:
    fake_upstream.queue(Reply(status=status, error_message="context too long for this model"))
    with pytest.raises(exception) as caught:
        call(gateway)
    assert caught.value.status_code == status
    assert "context too long for this model" in error_of(caught.value)["message"]


@pytest.mark.parametrize("reply", [Reply(status=500), Reply(status=503), Reply(garbage=True)])
@pytest.mark.usefixtures("one_attempt")
def test_an_upstream_5xx_or_garbage_is_a_502(gateway: Gateway, fake_upstream: FakeUpstream, reply: Reply) -> None:
    fake_upstream.queue(reply)
    with pytest.raises(openai.InternalServerError) as caught:
        call(gateway)
    assert caught.value.status_code == 502


@pytest.mark.usefixtures("one_attempt")
def test_a_streamed_request_failing_before_the_first_byte_is_an_ordinary_error(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(status=429, error_message="slow down"))
    with pytest.raises(openai.RateLimitError):
        call(gateway, stream=True)


def test_the_provider_key_never_leaks_into_errors(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    provider_key = "sk-upstream-secret-0123456789"
    fake_upstream.queue(Reply(status=401, error_message=f"Incorrect API key provided: {provider_key}"))
    with pytest.raises(openai.AuthenticationError) as caught:
        call(gateway)
    assert provider_key not in caught.value.response.text
    assert "upstream-secret" not in caught.value.response.text


def test_the_provider_key_stays_out_of_the_upstream_targets_repr() -> None:
    # Tracebacks with local variables (Django's debug page, error e-mails) print reprs.
    target = upstream.Target("fake", "http://127.0.0.1:9/v1", "sk-upstream-secret-0123456789", 1.0, 5.0)
    assert "upstream-secret" not in repr(target)
