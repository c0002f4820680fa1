"""The fake upstream's completions, embeddings and Responses mode speak OpenAI's API (the SDK, the schema).

Passthrough tests trust these answers, so they are held to the schema here, called directly.
"""

from __future__ import annotations

import base64
import struct

import httpx
import openai
import pytest

from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.openai_schema import validate, validate_completion_chunk, validate_event


@pytest.fixture
def client(fake_upstream: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_upstream.base_url, api_key="sk-any", max_retries=0)


def test_completions_answer_each_prompt_and_echo(fake_upstream: FakeUpstream, client: openai.OpenAI) -> None:
    fake_upstream.queue(Reply(content=" world"))
    answer = client.completions.create(model="fake-small", prompt=["Hello", "Goodbye"], echo=True, n=2)
    validate(answer.model_dump(exclude_unset=True), "CreateCompletionResponse")
    assert [choice.text for choice in answer.choices] == ["Hello world"] * 2 + ["Goodbye world"] * 2
    assert answer.usage is not None and answer.usage.prompt_tokens == 2
    assert fake_upstream.last.path == "/v1/completions"


def test_completions_stream_with_a_usage_chunk(fake_upstream: FakeUpstream, client: openai.OpenAI) -> None:
    fake_upstream.queue(Reply(content="one two three"))
    chunks = list(
        client.completions.create(
            model="fake-small", prompt="count", stream=True, stream_options={"include_usage": True}
        )
    )
    for chunk in chunks:
        validate_completion_chunk(chunk.model_dump(exclude_unset=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "one two three"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_embeddings_in_float_and_base64_are_the_same_vector(fake_upstream: FakeUpstream) -> None:
    with httpx.Client(base_url=fake_upstream.base_url, timeout=30) as http:
        floats = http.post("/embeddings", json={"model": "e", "input": ["a b", "c"], "encoding_format": "float"}).json()
        packed = http.post("/embeddings", json={"model": "e", "input": "a b", "encoding_format": "base64"}).json()
        short = http.post("/embeddings", json={"model": "e", "input": [[1, 2, 3]], "dimensions": 3}).json()
    validate(floats, "CreateEmbeddingResponse")
    assert len(floats["data"]) == 2 and len(floats["data"][0]["embedding"]) == fake_upstream.embedding_dims
    raw = base64.b64decode(packed["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert decoded == pytest.approx(floats["data"][0]["embedding"], abs=1e-6)
    assert len(short["data"][0]["embedding"]) == 3 and short["usage"]["prompt_tokens"] == 3


def test_responses_are_a_404_until_the_mode_is_on(fake_upstream: FakeUpstream, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="fake-small", input="hi")
    fake_upstream.speaks_responses = True
    fake_upstream.queue(Reply(content="Hi there", reasoning="greet back"))
    response = client.responses.create(model="fake-small", input="hi")
    validate(response.model_dump(exclude_unset=True), "Response")
    assert response.output_text == "Hi there"
    assert [item.type for item in response.output] == ["reasoning", "message"]


def test_responses_stream_their_events(fake_upstream: FakeUpstream, client: openai.OpenAI) -> None:
    fake_upstream.speaks_responses = True
    fake_upstream.queue(Reply(tool_calls=[ToolCall("get_weather", '{"city":"Paris"}')]))
    events = list(client.responses.create(model="fake-small", input="weather?", stream=True))
    for event in events:
        validate_event(event.model_dump(exclude_unset=True))
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"
    [call] = events[-1].response.output
    assert call.type == "function_call" and call.arguments == '{"city":"Paris"}'


def test_chat_answers_carry_reasoning_under_either_name(fake_upstream: FakeUpstream, client: openai.OpenAI) -> None:
    fake_upstream.queue(Reply(content="42", reasoning="think", reasoning_field="reasoning"))
    message = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "?"}]).choices[0].message
    assert message.model_extra == {"reasoning": "think"}
    fake_upstream.queue(Reply(content="42", reasoning="think"))
    chunks = list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "?"}], stream=True))
    assert [c.choices[0].delta.model_extra for c in chunks if c.choices][1] == {"reasoning_content": "think"}


def test_the_fake_embeddings_put_texts_sharing_words_nearer() -> None:
    from tests.fake_upstream_openai import vector

    def cosine(a: str, b: str) -> float:
        return sum(x * y for x, y in zip(vector(a, 64), vector(b, 64), strict=True))

    assert vector("Car oil", 64) == vector("car oil", 64)
    assert cosine("change the car oil", "car oil every year") > cosine("change the car oil", "gardening in spring")
