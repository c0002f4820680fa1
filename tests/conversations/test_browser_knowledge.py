"""Knowledge in real headless Chromium, with the ingestion worker as a real process: a knowledge base made on
the Knowledge page, a file uploaded and seen to complete, attached to a conversation, asked about, the
answer's sources shown (the passage on click) and still there after a reload."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from tests.browser import log_in, open_page, send
from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.knowledge_worker import start_worker  # noqa: F401  (the fixture)
from tests.live_server import LiveServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

GUIDE = b"# Oil\n\nChange the engine oil every 10,000 km with grade 5W-30.\n\n# Radio\n\nThe code is in the glovebox.\n"


@pytest.fixture
def chat_model(fake_upstream: FakeUpstream, transactional_db: None) -> LanguageModel:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=10)
    return LanguageModel.objects.create(public_id="fake/small", provider=provider, upstream_model="fake-small")


@pytest.fixture
def worker(request: pytest.FixtureRequest, live_server: LiveServer) -> subprocess.Popen[str]:
    """The worker as a real process with the live server's settings (its files too)."""
    start: Callable[..., subprocess.Popen[str]] = request.getfixturevalue("start_worker")
    return start(live_server.env)


@pytest.fixture
def page(chromium_browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    yield from open_page(chromium_browser, live_server.url, 1200, timeout_ms=60_000)


def last_reply(page: Page):  # type: ignore[no-untyped-def]
    return page.locator('[data-role="assistant"]').last


def test_a_knowledge_base_is_made_filled_attached_and_its_passages_cited(
    page: Page, alice: User, chat_model: LanguageModel, worker: subprocess.Popen[str], fake_upstream: FakeUpstream
) -> None:
    log_in(page)
    page.get_by_role("link", name="Knowledge").click()
    page.get_by_label("New knowledge base").fill("Car manuals")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Car manuals")).to_be_visible()
    page.locator('body[data-knowledge-ready="true"]').wait_for(state="attached")

    page.locator("#upload-input").set_input_files([{"name": "guide.md", "mimeType": "text/markdown", "buffer": GUIDE}])
    row = page.locator("#file-rows tr", has_text="guide.md")
    expect(row).to_have_attribute("data-status", "in_progress")
    expect(row).to_have_attribute("data-status", "completed")  # redrawn as the worker finishes it
    expect(row.locator(".file-state")).to_have_text("completed")

    page.get_by_role("link", name="chatsite").click()
    send(page, "Hello")
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    page.locator("#knowledge-picker summary").click()
    choice = page.get_by_role("checkbox", name="Car manuals")
    choice.check()
    expect(choice).to_be_checked()
    page.locator("#knowledge-picker summary").click()

    # The model takes tools: it searches the knowledge base, then answers citing what it read.
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("file_search", '{"query": "engine oil"}')]), Reply(content="Every 10,000 km [1].")
    )
    send(page, "How often do I change the engine oil?")
    expect(page.locator('[data-role="assistant"]')).to_have_count(2)
    reply = last_reply(page)
    expect(reply).to_have_attribute("data-status", "complete")
    sources = reply.locator("[data-sources]")
    first = sources.locator("summary").first
    expect(first).to_have_text("[1] guide.md — Oil")
    passage = sources.locator(".source-passage").first
    expect(passage).to_be_hidden()
    first.click()
    expect(passage).to_contain_text("every 10,000 km")
    assert "every 10,000 km" in str(fake_upstream.last.body)

    page.reload()
    expect(last_reply(page).locator("[data-sources] summary").first).to_have_text("[1] guide.md — Oil")


def test_a_document_too_long_for_the_context_is_searched_and_cited(
    page: Page, alice: User, chat_model: LanguageModel, worker: subprocess.Popen[str], fake_upstream: FakeUpstream
) -> None:
    filler = "The weather was mild and nothing happened. " * 2000  # ~22k tokens; the model reads 4,096
    book = (filler + "\n\nThe vault code is 7341.\n\n" + filler).encode()
    log_in(page)
    page.locator("#attach-input").set_input_files([{"name": "book.txt", "mimeType": "text/plain", "buffer": book}])
    expect(page.locator('#file-list [data-state="ready"]')).to_have_count(1)
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("file_search", '{"query": "vault code"}')]), Reply(content="It is 7341 [1].")
    )
    send(page, "What is the vault code?")
    reply = last_reply(page)
    expect(reply).to_have_attribute("data-status", "complete")  # once the worker has ingested the book
    expect(reply.locator("[data-sources] summary").first).to_have_text("[1] book.txt")
    searched = fake_upstream.last.body["messages"][-1]  # type: ignore[index]
    assert searched["role"] == "tool" and "The vault code is 7341." in searched["content"]
    assert len(searched["content"]) < 20_000  # passages, not the book


def test_a_shared_answer_shows_its_cited_passages(page: Page, alice: User, chat_model: LanguageModel) -> None:
    from conversations import branches, shares
    from conversations.models import Conversation

    conversation = Conversation.objects.create(owner=alice, model=chat_model, title="Oil")
    branches.append(conversation, role="user", content="How often?")
    cited = {"n": 1, "filename": "guide.pdf", "page": 2, "section": "", "text": "Every <b>10,000</b> km."}
    branches.append(conversation, role="assistant", content="Every 10,000 km [1].", sources=[cited])
    _share, token = shares.create(alice, conversation.pk)
    page.goto(f"/s/{token}/")
    sources = page.locator("[data-sources]")
    expect(sources.locator("summary")).to_have_text("[1] guide.pdf, page 2")
    sources.locator("summary").click()
    expect(sources.locator(".source-passage")).to_have_text("Every <b>10,000</b> km.")  # text, never markup
