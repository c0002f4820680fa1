"""A model whose provider is of kind `gemini`: called natively (generativelanguage v1beta, the key in
x-goog-api-key) by OpenAI chat, Responses, Anthropic and Gemini clients (the fake Gemini upstream);
Gemini in front and behind is a passthrough.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from google import genai
from google.genai import types

from catalogue.models import Deployment, LanguageModel
from gateway.serving.bodies import encode
from tests.fake_gemini import FakeGemini, GeminiReply
from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway.conftest import GEMINI, UPSTREAM_GEMINI, Gateway, wait_for_usage
from tests.gateway.conftest import UPSTREAM_GEMINI_KEY as UPSTREAM_KEY

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_a_chat_completion_is_sent_natively_and_answered_in_openais_shape(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    fake_gemini.queue(
        GeminiReply(
            parts=[{"text": "Thinking it over.", "thought": True}, {"text": "Hello there"}],
            prompt_tokens=12,
            candidates_tokens=3,
            thoughts_tokens=4,
            cached_tokens=2,
        )
    )
    completion = gateway.client().chat.completions.create(
        model=GEMINI,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        temperature=0.2,
        max_tokens=50,
        stop=["END"],
    )
    message = completion.choices[0].message
    assert message.content == "Hello there" and completion.model == GEMINI
    assert (message.model_extra or {})["reasoning_content"] == "Thinking it over."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 7)
    assert (
        completion.usage.completion_tokens_details and completion.usage.completion_tokens_details.reasoning_tokens == 4
    )
    sent = fake_gemini.last
    assert sent.path == f"/v1beta/models/{UPSTREAM_GEMINI}:generateContent"
    assert sent.api_key == UPSTREAM_KEY and "authorization" not in sent.headers
    assert sent.body == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "stopSequences": ["END"],
            "maxOutputTokens": 50,
            "temperature": 0.2,
            "thinkingConfig": {"includeThoughts": True},
        },
    }
    [row] = wait_for_usage(1)
    assert (row.prompt_tokens, row.completion_tokens, row.status) == (12, 7, 200)


def test_a_chat_stream_is_translated_with_reasoning_and_usage(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    fake_gemini.queue(GeminiReply(parts=[{"text": "Hmm.", "thought": True}, {"text": "one "}, {"text": "two"}]))
    stream = gateway.client().chat.completions.create(
        model=GEMINI,
        messages=[{"role": "user", "content": "Count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    thoughts = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks if c.choices
    )
    assert (text, thoughts) == ("one two", "Hmm.")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (7, 5)
    assert fake_gemini.last.path == f"/v1beta/models/{UPSTREAM_GEMINI}:streamGenerateContent"
    assert fake_gemini.last.query == "alt=sse"
    [row] = wait_for_usage(1)
    assert row.stream and (row.prompt_tokens, row.completion_tokens) == (7, 5) and not row.usage_estimated


def test_tool_calls_keep_their_ids_and_thought_signatures_across_turns(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    call = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnbmF0dXJl"}
    fake_gemini.queue(GeminiReply(parts=[call]), GeminiReply(parts=[{"text": "Sunny."}]))
    client = gateway.client()
    question: Any = {"role": "user", "content": "Weather in Paris?"}
    first = client.chat.completions.create(model=GEMINI, messages=[question], tools=[WEATHER], tool_choice="required")
    assert first.choices[0].finish_reason == "tool_calls"
    [tool_call] = first.choices[0].message.tool_calls or []
    assert tool_call.function.name == "get_weather" and json.loads(tool_call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    assert (tool_call.model_extra or {})["extra_content"] == {"google": {"thought_signature": "c2lnbmF0dXJl"}}
    sent = fake_gemini.last.body or {}
    assert sent["tools"] == [
        {"functionDeclarations": [{"name": "get_weather", "parametersJsonSchema": WEATHER["function"]["parameters"]}]}
    ]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    turns = [question, first.choices[0].message.model_dump(exclude_none=True)]
    turns.append({"role": "tool", "tool_call_id": tool_call.id, "content": '{"forecast": "sunny"}'})
    second = client.chat.completions.create(model=GEMINI, messages=turns, tools=[WEATHER])
    assert second.choices[0].message.content == "Sunny."
    contents = (fake_gemini.last.body or {})["contents"]
    assert contents[1] == {"role": "model", "parts": [call]}
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"forecast": "sunny"}}}],
    }


def test_the_upstreams_errors_come_back_and_429_is_retried(
    gateway: Gateway, fake_gemini: FakeGemini, fake_upstream: FakeUpstream, gemini: LanguageModel
) -> None:
    fake_gemini.queue(GeminiReply(status=400, error_status="INVALID_ARGUMENT", error_message="Bad schema"))
    response = gateway.http.post(
        "/v1/chat/completions",
        json={"model": GEMINI, "messages": [{"role": "user", "content": "Hi"}]},
        headers=gateway.headers(),
    )
    assert response.status_code == 400 and "Bad schema" in response.json()["error"]["message"]
    assert UPSTREAM_KEY not in response.text
    # A 429 (or 503) of one deployment is retryable: the next deployment answers.
    Deployment.objects.create(model=gemini, provider=gateway.provider, upstream_model="fake-small", priority=1)
    fake_gemini.queue(GeminiReply(status=429, error_status="RESOURCE_EXHAUSTED", error_message="Quota"))
    fake_upstream.queue(Reply(content="From the backup"))
    completion = gateway.client().chat.completions.create(model=GEMINI, messages=[{"role": "user", "content": "Hi"}])
    assert completion.choices[0].message.content == "From the backup"


def test_an_error_event_mid_stream_ends_the_stream_with_an_error(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    fake_gemini.queue(GeminiReply(parts=[{"text": "one "}, {"text": "two"}], error_after_parts=1))
    response = gateway.http.post(
        "/v1/chat/completions",
        json={"model": GEMINI, "messages": [{"role": "user", "content": "Hi"}], "stream": True},
        headers=gateway.headers(),
    )
    events = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "one "
    assert "overloaded" in json.loads(events[-2])["error"]["message"]
    [row] = wait_for_usage(1)
    assert row.status >= 500


def test_an_anthropic_client_reaches_a_gemini_model(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    fake_gemini.queue(GeminiReply(parts=[{"text": "Hi from Gemini"}]))
    client = anthropic.Anthropic(
        base_url=gateway.url, api_key=gateway.secret, max_retries=0, http_client=gateway.app.sdk_client()
    )
    message = client.messages.create(model=GEMINI, max_tokens=100, messages=[{"role": "user", "content": "Hi"}])
    assert message.content[0].text == "Hi from Gemini" and message.stop_reason == "end_turn"  # type: ignore[union-attr]
    assert (fake_gemini.last.body or {})["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]


def test_a_responses_client_reaches_a_gemini_model(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    fake_gemini.queue(GeminiReply(parts=[{"text": "Responses via Gemini"}]))
    response = gateway.client().responses.create(model=GEMINI, input="Hi", store=False)
    assert response.output_text == "Responses via Gemini"
    assert fake_gemini.last.path.endswith(":generateContent")


def _sdk(gateway: Gateway) -> genai.Client:
    options = types.HttpOptions(base_url=gateway.url, api_version="v1beta", httpx_client=gateway.http)
    return genai.Client(api_key=gateway.secret, http_options=options)


def test_gemini_in_front_and_behind_is_a_passthrough(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    reply = GeminiReply(parts=[{"text": "As it came", "thoughtSignature": "c2ln"}], thoughts_tokens=3)
    fake_gemini.queue(reply)
    body: dict[str, Any] = {
        # A file of Google's Files API: no other API could take it, Gemini gets it as it is.
        "contents": [{"role": "user", "parts": [{"text": "Hi"}, {"fileData": {"fileUri": "files/abc"}}]}],
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}},
        "cachedContent": "cachedContents/abc",
    }
    response = gateway.http.post(
        f"/v1beta/models/{GEMINI}:generateContent", json=body, headers={"x-goog-api-key": gateway.secret}
    )
    assert response.status_code == 200, response.text
    assert fake_gemini.last.raw == encode(body)  # the client's request, byte for byte
    assert fake_gemini.last.path == f"/v1beta/models/{UPSTREAM_GEMINI}:generateContent"
    assert response.json() == {**fake_gemini.answer_of(reply), "modelVersion": GEMINI}
    [row] = wait_for_usage(1)
    assert (row.prompt_tokens, row.completion_tokens) == (7, 8)


def test_gemini_in_front_and_behind_streams_as_it_came(
    gateway: Gateway, fake_gemini: FakeGemini, gemini: LanguageModel
) -> None:
    fake_gemini.queue(GeminiReply(parts=[{"text": "one "}, {"text": "two"}]))
    chunks = list(_sdk(gateway).models.generate_content_stream(model=GEMINI, contents="Count"))
    assert "".join(c.text or "" for c in chunks) == "one two"
    assert chunks[-1].usage_metadata and chunks[-1].usage_metadata.total_token_count == 12
    assert all(c.model_version == GEMINI for c in chunks)
    assert fake_gemini.last.path.endswith(":streamGenerateContent") and fake_gemini.last.query == "alt=sse"


def test_a_gemini_provider_lists_its_models(gemini: LanguageModel) -> None:
    from asgiref.sync import async_to_sync

    from gateway import upstream

    listed = async_to_sync(upstream.list_models)(gemini.provider)
    assert [m["id"] for m in listed] == ["gemini-2.5-flash"]
