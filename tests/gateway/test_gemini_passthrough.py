"""Gemini in front and Gemini behind: the upstream's answer, stream events and errors reach the client
byte for byte (but modelVersion's value, our model's id); countTokens asks the upstream; a fallback
on another API is translated; a translated stream's usage counts thoughts as the answer's does.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group
from google import genai
from google.genai import types

from accounts.keys import create_key
from catalogue.models import Deployment, Fallback, LanguageModel, Provider
from core.clock import ManualClock
from tests.fake_gemini import FakeGemini, GeminiReply
from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway.conftest import GEMINI, MODEL, UPSTREAM_GEMINI, UPSTREAM_GEMINI_KEY, Gateway, wait_for_usage
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)

ASKED: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "Count to two"}]}]}
THEIRS = b'"modelVersion": "gemini-2.5-flash-001"'
OURS = b'"modelVersion": "google/gemini-flash"'
# Valid and unusual: spacing and key order of its own, escapes, a number no 64-bit integer holds, a
# field we do not model, the usage first.
ANSWER = (
    b'{\n  "usageMetadata" :{"promptTokenCount": 11,"candidatesTokenCount":4, "totalTokenCount": 15},\n'
    b'\t"candidates": [ {"content": {"role": "model", "parts": [{"text": "caf\\u00e9 \\ud83d\\ude00 2.50",'
    b' "thoughtSignature": "c2ln"}]}, "finishReason": "STOP", "avgLogprobs": -0.250, "index": 0} ],\n'
    b'  "unmodelled": {"nested": [1, 2.50, 1e3, 123456789012345678901234567890], "modelVersion": "inner"},\n'
    b'  "modelVersion": "gemini-2.5-flash-001",   "responseId" :"r-1"\n}\n'
)
EVENTS = [
    b'{"candidates":[{"content":{"parts":[{"text":"one "}],"role":"model"},"index":0}],'
    b'"modelVersion": "gemini-2.5-flash-001","extra":{"a":[],"b":null}}',
    # One event over two `data:` lines, as SSE allows.
    b'{ "candidates" : [ { "content" : { "parts" : [ { "text" : "two" } ] , "role" : "model" } ,'
    b' "finishReason" : "STOP" } ] ,\n "usageMetadata" : { "promptTokenCount" : 9 , "candidatesTokenCount" : 2 ,'
    b' "thoughtsTokenCount" : 5, "totalTokenCount" : 16 } , "modelVersion": "gemini-2.5-flash-001" }',
]
OVERLOADED = b'{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE", "details": []}}'


def _frames(events: list[bytes]) -> bytes:
    """Server-sent events as the gateway frames them: each event's data as it came, line by line."""
    return b"".join(b"data: " + event.replace(b"\n", b"\ndata: ") + b"\n\n" for event in events)


def _post(gateway: Gateway, method: str, body: dict[str, Any], model: str = GEMINI, **kwargs: Any) -> Any:
    return gateway.http.post(
        f"/v1beta/models/{model}:{method}", json=body, headers={"x-goog-api-key": gateway.secret}, **kwargs
    )


def test_a_gemini_upstreams_answer_reaches_the_client_byte_for_byte(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    fake_gemini.queue(GeminiReply(raw_body=ANSWER))
    response = _post(gateway, "generateContent", ASKED)
    assert response.status_code == 200, response.text
    assert response.content == ANSWER.replace(THEIRS, OURS)
    assert response.headers["x-chatsite-model"] == GEMINI
    [row] = wait_for_usage(1)
    assert (row.prompt_tokens, row.completion_tokens, row.usage_estimated) == (11, 4, False)


def test_a_gemini_upstreams_stream_reaches_the_client_event_for_event(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    fake_gemini.queue(GeminiReply(raw_events=EVENTS))
    response = _post(gateway, "streamGenerateContent", ASKED, params={"alt": "sse"})
    assert response.status_code == 200, response.text
    assert response.content == _frames([event.replace(THEIRS, OURS) for event in EVENTS])
    [row] = wait_for_usage(1)
    assert (row.prompt_tokens, row.completion_tokens, row.usage_estimated) == (9, 7, False), "the last event's usage"


def test_the_google_genai_sdk_reads_the_relayed_stream(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    fake_gemini.queue(GeminiReply(raw_events=EVENTS))
    options = types.HttpOptions(base_url=gateway.url, api_version="v1beta", httpx_client=gateway.http)
    client = genai.Client(api_key=gateway.secret, http_options=options)
    chunks = list(client.models.generate_content_stream(model=GEMINI, contents="Count to two"))
    assert "".join(chunk.text or "" for chunk in chunks) == "one two"
    assert [chunk.model_version for chunk in chunks] == [GEMINI, GEMINI]
    assert chunks[-1].usage_metadata and chunks[-1].usage_metadata.thoughts_token_count == 5


def test_a_gemini_upstreams_error_event_reaches_the_client_as_google_sent_it(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    fake_gemini.queue(GeminiReply(raw_events=[EVENTS[0], OVERLOADED]))
    response = _post(gateway, "streamGenerateContent", ASKED, params={"alt": "sse"})
    assert response.content == _frames([EVENTS[0].replace(THEIRS, OURS), OVERLOADED])
    [row] = wait_for_usage(1)
    assert row.status == 502


def test_a_key_in_an_upstream_error_event_is_scrubbed_and_the_rest_kept(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    leaky = (
        b'{"error": {"status": "INTERNAL", "message": "bad key ' + UPSTREAM_GEMINI_KEY.encode() + b'", "code": 500}}'
    )
    fake_gemini.queue(GeminiReply(raw_events=[EVENTS[0], leaky]))
    response = _post(gateway, "streamGenerateContent", ASKED, params={"alt": "sse"})
    assert UPSTREAM_GEMINI_KEY not in response.text
    assert response.content.endswith(
        b'data: {"error": {"status": "INTERNAL", "message": "bad key ***", "code": 500}}\n\n'
    )


def test_a_fallback_on_another_api_answers_translated(
    gateway: Gateway, fake_gemini: FakeGemini, fake_upstream: FakeUpstream, gemini: LanguageModel, one_attempt: None
) -> None:
    Fallback.objects.create(model=gemini, to=gateway.model, reason=Fallback.Reason.FAILURE)
    fake_gemini.default = GeminiReply(status=503, error_status="UNAVAILABLE")
    fake_upstream.queue(Reply(content="from the backup"), Reply(content="streamed backup"))
    answer = _post(gateway, "generateContent", ASKED)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-chatsite-model"] == MODEL
    assert answer.json()["modelVersion"] == MODEL
    assert answer.json()["candidates"][0]["content"]["parts"] == [{"text": "from the backup"}]
    streamed = _post(gateway, "streamGenerateContent", ASKED, params={"alt": "sse"})
    assert streamed.headers["x-chatsite-model"] == MODEL
    assert b'"text":"streamed"' in streamed.content and b'"modelVersion":"acme/chat-small"' in streamed.content
    assert [(r.body or {})["messages"] for r in fake_upstream.chat_requests()] == [
        [{"role": "user", "content": "Count to two"}]
    ] * 2


def test_a_translated_stream_counts_thoughts_as_the_translated_answer_does(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    # The fake reports a chunk a token: 3 streamed (the reasoning, "one", " two"), plus the reasoning tokens.
    fake_upstream.queue(Reply(content="one two", reasoning="Let me count.", reasoning_tokens=6))
    streamed = _post(gateway, "streamGenerateContent", ASKED, model=MODEL, params={"alt": "sse"})
    last = json.loads(streamed.text.strip().split("\n\n")[-1].removeprefix("data: "))
    [row] = wait_for_usage(1)
    assert (row.prompt_tokens, row.completion_tokens) == (3, 9)
    expected = {"promptTokenCount": 3, "candidatesTokenCount": 3, "thoughtsTokenCount": 6, "totalTokenCount": 12}
    assert last["usageMetadata"] == expected, "thoughts apart, candidates the rest, as the answer's usage says"


def test_count_tokens_asks_the_gemini_upstream(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    fake_gemini.queue(GeminiReply(total_tokens=4242))
    options = types.HttpOptions(base_url=gateway.url, api_version="v1beta", httpx_client=gateway.http)
    client = genai.Client(api_key=gateway.secret, http_options=options)
    assert client.models.count_tokens(model=GEMINI, contents="Count to two").total_tokens == 4242
    sent = fake_gemini.last
    assert sent.path == f"/v1beta/models/{UPSTREAM_GEMINI}:countTokens"
    assert sent.api_key == UPSTREAM_GEMINI_KEY and "authorization" not in sent.headers
    assert sent.body == ASKED
    gateway.app.flush()
    assert not UsageRecord.objects.exists(), "counting is free"


def test_count_tokens_fails_over_to_the_next_gemini_deployment(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    backup = Provider.objects.create(name="google-backup", kind=Provider.Kind.GEMINI, base_url=fake_gemini.base_url)
    backup.set_api_key(UPSTREAM_GEMINI_KEY)
    backup.save()
    Deployment.objects.create(model=gemini, provider=backup, upstream_model="gemini-backup", priority=1)
    fake_gemini.queue(GeminiReply(status=503, error_status="UNAVAILABLE"), GeminiReply(total_tokens=77))
    inner = {"model": f"models/{GEMINI}", **ASKED}
    response = _post(gateway, "countTokens", {"generateContentRequest": inner})
    assert response.status_code == 200, response.text
    assert (
        response.content
        == json.dumps({"totalTokens": 77, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 77}]}).encode()
    )
    assert [r.path.rsplit("/", 1)[-1] for r in fake_gemini.requests] == [
        f"{UPSTREAM_GEMINI}:countTokens",
        "gemini-backup:countTokens",
    ]
    assert fake_gemini.last.body == {"generateContentRequest": {**inner, "model": "models/gemini-backup"}}


def test_an_upstream_refusing_the_count_answers_in_googles_shape(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    fake_gemini.queue(GeminiReply(status=400, error_status="INVALID_ARGUMENT", error_message="Bad part"))
    response = _post(gateway, "countTokens", ASKED)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT") and "Bad part" in error["message"]
    assert UPSTREAM_GEMINI_KEY not in response.text


def test_count_tokens_refuses_a_model_the_key_may_not_call(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    _key, secret = create_key(gateway.user, "only the small one", allowed_models=[MODEL])
    response = gateway.http.post(f"/v1beta/models/{GEMINI}:countTokens", json=ASKED, headers={"x-goog-api-key": secret})
    assert (response.status_code, response.json()["error"]["status"]) == (403, "PERMISSION_DENIED")
    assert fake_gemini.awaited_requests() == []


def test_count_tokens_of_another_groups_model_is_not_found_and_asks_nobody(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    gemini.groups.add(Group.objects.create(name="staff"))
    response = _post(gateway, "countTokens", ASKED)
    assert (response.status_code, response.json()["error"]["status"]) == (404, "NOT_FOUND")
    assert fake_gemini.awaited_requests() == []


def test_a_cache_hit_replays_the_upstreams_bytes(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel, clock: ManualClock
) -> None:
    gemini.cache_ttl_seconds = 60
    gemini.save()
    fake_gemini.queue(GeminiReply(raw_body=ANSWER), GeminiReply(raw_events=EVENTS))
    answers = [_post(gateway, "generateContent", ASKED) for _ in range(2)]
    streams = [_post(gateway, "streamGenerateContent", ASKED, params={"alt": "sse"}) for _ in range(2)]
    assert [r.headers["x-chatsite-cache"] for r in answers + streams] == ["miss", "hit", "miss", "hit"]
    assert answers[1].content == answers[0].content == ANSWER.replace(THEIRS, OURS)
    assert streams[1].content == streams[0].content == _frames([event.replace(THEIRS, OURS) for event in EVENTS])
    assert len(fake_gemini.awaited_requests()) == 2
