"""Tools in the chat, end to end in headless Chromium: turn web search on in the composer's "Tools" control,
watch the tool's section go from running to done while the scripted upstream calls web search against the
fake SearXNG, see the numbered sources, reload: all still there."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from conversations.models import Conversation
from tests.browser import log_in, open_page, send
from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.live_server import LiveServer, start_server
from tests.tools import fake_search
from tests.tools.servers import serve

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

gate = threading.Event()  # the search for "gated" answers once the test opens it


async def gated_search(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http" and b"q=gated" in scope.get("query_string", b""):
        await asyncio.to_thread(gate.wait, 60)
    await fake_search.app(scope, receive, send)


@pytest.fixture(scope="module")
def search_base() -> Iterator[str]:
    with serve(gated_search) as url:
        yield url


@pytest.fixture(scope="module")
def tools_server(django_db_setup: None, django_db_blocker: Any, search_base: str) -> Iterator[LiveServer]:
    """A server process of its own: it reads SEARXNG_URL from its environment."""
    from django.conf import settings
    from django.db import connection

    server = start_server(dict(connection.settings_dict), settings.SECRET_KEY, env={"SEARXNG_URL": search_base})
    yield server
    server.stop()


@pytest.fixture
def page(chromium_browser: Browser, tools_server: LiveServer) -> Iterator[Page]:
    yield from open_page(chromium_browser, tools_server.url, 1200)


@pytest.fixture
def model(fake_upstream: FakeUpstream, transactional_db: None) -> LanguageModel:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=10)
    return LanguageModel.objects.create(public_id="fake/small", provider=provider, upstream_model="fake-small")


def test_turn_web_search_on_watch_its_section_stream_and_reload(
    page: Page, alice: User, model: LanguageModel, fake_upstream: FakeUpstream
) -> None:
    gate.clear()
    fake_upstream.queue(Reply(content="", tool_calls=[ToolCall("web_search", '{"query": "gated"}', "call_w")]))
    answer = Reply(content="Otters hold hands [1] and float [2].", chunks=8, hold_after_chunks=2)
    fake_upstream.queue(answer)
    log_in(page)

    page.get_by_role("button", name="Tools").click()
    tools = page.get_by_role("group", name="Tools")
    expect(tools.get_by_role("checkbox", name="Read web pages")).not_to_be_checked()
    tools.get_by_role("checkbox", name="Web search").check()
    page.get_by_role("button", name="Tools").click()
    send(page, "Tell me about otters")

    reply = page.locator('[data-role="assistant"]').last
    section = reply.locator('details[data-tool="web_search"]')
    expect(section).to_have_attribute("data-state", "running")
    expect(section.locator("summary")).to_contain_text("Web search")
    expect(section.locator("summary")).to_contain_text("running")
    gate.set()
    expect(section).to_have_attribute("data-state", "done")
    expect(section.locator("summary")).to_contain_text("done")
    expect(reply.locator(".msg-body")).to_contain_text("Otters")  # the answer streams after the tool
    expect(reply).to_have_attribute("data-status", "streaming")
    answer.released.set()
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator(".msg-body")).to_contain_text("float [2].")

    section.locator("summary").click()
    expect(section.locator(".tool-arguments")).to_contain_text('"query": "gated"')
    expect(section.locator(".tool-result")).to_contain_text("Result 1 for gated")
    sources = reply.locator('[data-sources="web"] li a')
    expect(sources).to_have_count(3)  # the javascript: result is no source
    expect(sources.first).to_have_text("Result 1 for gated")
    expect(sources.first).to_have_attribute("href", "https://example.org/gated/1")

    page.reload()
    reply = page.locator('[data-role="assistant"]').last
    section = reply.locator('details[data-tool="web_search"]')
    expect(section).to_have_attribute("data-state", "done")
    expect(reply.locator('[data-sources="web"] li')).to_have_count(3)
    page.get_by_role("button", name="Tools").click()
    tools = page.get_by_role("group", name="Tools")
    expect(tools.get_by_role("checkbox", name="Web search")).to_be_checked()
    expect(tools.get_by_role("checkbox", name="Read web pages")).not_to_be_checked()
    sent = fake_upstream.requests[0].body
    assert sent is not None
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["web_search"]


def test_a_project_sets_the_tools_its_new_chats_start_with(
    page: Page, alice: User, model: LanguageModel, fake_upstream: FakeUpstream
) -> None:
    log_in(page)
    page.get_by_role("button", name="New project").click()
    dialog = page.get_by_role("dialog", name="New project")
    dialog.get_by_label("Name").fill("Research")
    dialog.get_by_role("checkbox", name="Read web pages").check()
    dialog.get_by_role("button", name="Create project").click()
    projects = page.get_by_role("navigation", name="Projects")
    expect(projects.get_by_role("button", name="Research")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Tools").click()
    tools = page.get_by_role("group", name="Tools")
    expect(tools.get_by_role("checkbox", name="Read web pages")).to_be_checked()
    expect(tools.get_by_role("checkbox", name="Web search")).not_to_be_checked()
    page.get_by_role("button", name="Tools").click()
    fake_upstream.queue(Reply(content="Hello there."))
    send(page, "Hello")
    expect(page.locator('[data-role="assistant"]').last).to_have_attribute("data-status", "complete")
    conversation = Conversation.objects.get(owner=alice)
    assert (conversation.project and conversation.project.name, conversation.tools) == ("Research", {"fetch": True})
    sent = fake_upstream.requests[0].body
    assert sent is not None
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["fetch"]
