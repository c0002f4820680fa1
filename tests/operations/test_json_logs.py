"""LOG_FORMAT=json: one JSON line per /v1 request saying who, what and how it went, and never a secret or a prompt."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from accounts.keys import create_key
from accounts.models import ApiKey, User
from catalogue.models import LanguageModel
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer
from tests.operations.helpers import fake_model, post_chat, start_workers

pytestmark = pytest.mark.timeout(120)

MODEL = "acme/logged"
PROMPT_MARKER = "prompt-marker-7f3a9c"
ANSWER_MARKER = "answer-marker-51d2e8"
KEY_MARKER = "key-marker-c0ffee"


@pytest.fixture(scope="module")
def json_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[LiveServer]:
    [server] = start_workers(1, {"LOG_FORMAT": "json"})
    yield server
    server.stop()


@pytest.fixture
def model(fake_upstream: FakeUpstream, transactional_db: None) -> LanguageModel:
    return fake_model(fake_upstream, MODEL)


def _request_lines(server: LiveServer, count: int) -> list[dict[str, Any]]:
    """The server's request lines, once it has written `count` of them (every line must be JSON)."""
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        found = [line for line in lines if line.get("logger") == "operations.requests"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_request_gets_one_line_with_its_facts_and_none_of_its_secrets(
    json_server: LiveServer, model: LanguageModel, alice: User, fake_upstream: FakeUpstream
) -> None:
    before = len(_request_lines(json_server, 0))
    fake_upstream.default = Reply(content=f"Here it is: {ANSWER_MARKER}")
    key, secret = create_key(alice, "logged")
    assert isinstance(key, ApiKey)
    answer = post_chat(json_server, secret, MODEL, f"Repeat {PROMPT_MARKER}")
    assert answer.status_code == 200
    refused = post_chat(json_server, f"sk-{KEY_MARKER}", MODEL, PROMPT_MARKER)
    assert refused.status_code == 401

    lines = _request_lines(json_server, before + 2)[before:]
    assert len(lines) == 2
    served, unknown = lines
    assert served["message"] == "request"
    assert served["request_id"] == answer.headers["x-request-id"]
    assert served["user_id"] == alice.pk
    assert served["key_prefix"] == key.prefix
    assert served["endpoint"] == "/v1/chat/completions"
    assert served["model"] == MODEL
    assert served["deployment"] == model.deployments.get().pk
    assert served["status"] == 200
    assert served["input_tokens"] == answer.json()["usage"]["prompt_tokens"]
    assert served["output_tokens"] == answer.json()["usage"]["completion_tokens"]
    assert served["latency_ms"] >= 0
    assert (unknown["status"], unknown["request_id"]) == (401, refused.headers["x-request-id"])
    assert "user_id" not in unknown

    log = json_server.log()
    for marker in (PROMPT_MARKER, ANSWER_MARKER, KEY_MARKER, secret, secret[3:]):
        assert marker not in log
