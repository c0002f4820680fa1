"""Which first-party modules a request passes through, and how often it crosses from one to another.

    .venv/bin/python -m pytest bench/hops.py --import-mode=importlib -s -q -o addopts=""

Run from a checkout's root, it traces that checkout (to compare with another commit, run it from a
worktree of that commit with VAR_DIR pointing at this one's var/, for its database). For a plain
and a streamed chat completion, a /v1/messages call (Anthropic client, OpenAI-compatible upstream
and Anthropic upstream) and a browser chat's reply, it prints the number of hops (calls or resumes
that cross from one first-party module into another, on the thread serving the request; database
work on core.db's threads is not traced) and the modules in the order first entered.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from tests import conftest
from tests.fake_anthropic import AnthropicReply, FakeAnthropic, Text
from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway import conftest as gateway_conftest
from tests.gateway.conftest import MODEL, Gateway

# The tests' fixtures (database, fake upstreams, the app in process, the gateway's catalogue), here too.
for _name, _value in [*vars(conftest).items(), *vars(gateway_conftest).items()]:
    if hasattr(_value, "_fixture_function_marker"):
        globals().setdefault(_name, _value)

APPS = ("gateway", "usage", "catalogue", "accounts", "chatsite", "conversations", "core", "responses", "api")
HELLO = [{"role": "user", "content": "Say hello"}]


def _profiler(seen: list[str]) -> Callable[[Any, str, Any], None]:
    def profile(frame: Any, event: str, arg: Any) -> None:
        if event != "call":
            return
        name = frame.f_globals.get("__name__", "")
        if name.partition(".")[0] in APPS and (not seen or seen[-1] != name):
            seen.append(name)

    return profile


def _report(what: str, seen: list[str]) -> None:
    first = list(dict.fromkeys(seen))
    print(f"\n{what}: {len(seen) - 1} hops, {len(first)} modules")
    print("  " + " -> ".join(first))


def _traced_on_app(gateway: Gateway, what: str, request: Callable[[], Any]) -> None:
    """The fewest hops of three traced requests: the others caught background work (ledger flushes)."""
    runs: list[list[str]] = []

    async def on() -> None:
        sys.setprofile(_profiler(runs[-1]))

    async def off() -> None:
        sys.setprofile(None)

    request()  # warm: caches filled, modules imported
    for _ in range(3):
        runs.append([])
        gateway.app.run(on())
        try:
            request()
        finally:
            gateway.app.run(off())
    _report(what, min(runs, key=len))


def test_plain_chat_completion(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    def request() -> None:
        fake_upstream.queue(Reply(content="Hello there"))
        gateway.client().chat.completions.create(model=MODEL, messages=HELLO)

    _traced_on_app(gateway, "plain chat completion", request)


def test_streamed_chat_completion(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    def request() -> None:
        fake_upstream.queue(Reply(content="one two three four five"))
        for _chunk in gateway.client().chat.completions.create(model=MODEL, messages=HELLO, stream=True):
            pass

    _traced_on_app(gateway, "streamed chat completion (5 chunks)", request)


def _message(gateway: Gateway, model: str, stream: bool) -> None:
    body = {"model": model, "max_tokens": 100, "messages": HELLO, "stream": stream}
    headers = {"x-api-key": gateway.secret, "anthropic-version": "2023-06-01"}
    response = gateway.http.post(gateway.base_url + "/messages", json=body, headers=headers)
    assert response.status_code == 200, response.text


def test_messages_call_on_an_openai_upstream(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    def request() -> None:
        fake_upstream.queue(Reply(content="Hello there"))
        _message(gateway, MODEL, False)

    _traced_on_app(gateway, "/v1/messages, OpenAI-compatible upstream", request)


@pytest.fixture
def claude(gateway: Gateway, fake_anthropic: FakeAnthropic) -> Iterator[str]:
    provider = Provider.objects.create(
        name="anthropic", kind=Provider.Kind.ANTHROPIC, base_url=fake_anthropic.base_url, read_timeout=5
    )
    LanguageModel.objects.create(public_id="acme/claude", provider=provider, upstream_model="claude-x")
    yield "acme/claude"


def test_messages_call_on_an_anthropic_upstream(gateway: Gateway, fake_anthropic: FakeAnthropic, claude: str) -> None:
    def request() -> None:
        fake_anthropic.queue(AnthropicReply(content=[Text("Hello there")], input_tokens=12, output_tokens=3))
        _message(gateway, claude, False)

    _traced_on_app(gateway, "/v1/messages, Anthropic upstream", request)


def test_streamed_messages_call_on_an_anthropic_upstream(
    gateway: Gateway, fake_anthropic: FakeAnthropic, claude: str
) -> None:
    def request() -> None:
        fake_anthropic.queue(AnthropicReply(content=[Text("Hello there")], input_tokens=12, output_tokens=3))
        _message(gateway, claude, True)

    _traced_on_app(gateway, "streamed /v1/messages, Anthropic upstream", request)


@pytest.mark.django_db(transaction=True)
def test_browser_chat_reply(fake_upstream: FakeUpstream) -> None:
    from conversations import services
    from conversations.generation import Generation

    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=5)
    model = LanguageModel.objects.create(public_id=MODEL, provider=provider, upstream_model="fake-small")

    def reply(seen: list[str] | None = None) -> None:
        # A user of its own each time: a user has only CHAT_MAX_GENERATIONS replies being written.
        user = User.objects.create_user(f"hops{User.objects.count()}", password="a-long-and-unusual-password")
        fake_upstream.queue(Reply(content="one two three four five"))
        conversation = services.create_conversation(user, model.public_id)
        _question, answer = services.add_user_message(user, conversation.pk, "Say hello")
        generation = Generation(conversation.pk, answer.pk)

        async def consume() -> None:
            sys.setprofile(_profiler(seen) if seen is not None else None)
            try:
                await generation._consume()
            finally:
                sys.setprofile(None)

        asyncio.run(consume())
        assert generation.content == "one two three four five", generation.error

    reply()
    runs: list[list[str]] = [[], [], []]
    for seen in runs:
        reply(seen)
    _report("browser chat reply (5 chunks; the gateway part: Generation._consume)", min(runs, key=len))
