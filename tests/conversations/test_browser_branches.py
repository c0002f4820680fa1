"""End to end in headless Chromium: Thinking, versions of messages, the settings panel, the model details.

Each test runs at desktop width and at a phone's 375 px.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from conversations.models import Conversation
from tests.browser import log_in, open_page, send, wait_ready
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def models(fake_upstream: FakeUpstream, transactional_db: None) -> list[LanguageModel]:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=10)
    return [
        LanguageModel.objects.create(
            public_id="fake/small",
            provider=provider,
            upstream_model="fake-small",
            description="A small thinker",
            context_length=8192,
            max_output_tokens=512,
            reasoning=True,
            input_price_per_million=Decimal("0.15"),
            output_price_per_million=Decimal("0.60"),
        ),
        LanguageModel.objects.create(
            public_id="fake/vision", provider=provider, upstream_model="fake-large", vision=True, tools=False
        ),
    ]


@pytest.fixture(params=[1200, 375], ids=["desktop", "phone"])
def page(request: pytest.FixtureRequest, chromium_browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    yield from open_page(chromium_browser, live_server.url, request.param)


def last_reply(page: Page) -> Locator:
    return page.locator('[data-role="assistant"]').last


def fits(page: Page) -> None:
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_a_reasoning_stream_shows_a_thinking_section_live_and_after_reload(
    page: Page, alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    held = Reply(content="The answer is **4**.", chunks=3, reasoning="Two plus *two* is four.", hold_after_chunks=1)
    fake_upstream.queue(held)
    log_in(page)
    send(page, "What is 2+2?")
    reply = last_reply(page)
    summary = reply.locator("summary", has_text="Thinking")
    expect(summary).to_be_visible()  # live, while the answer has not begun
    expect(reply.get_by_role("group", name="Thinking")).to_be_visible()
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(reply.locator(".thinking-body")).to_be_hidden()  # collapsed
    summary.click()
    expect(reply.locator(".thinking-body em")).to_have_text("two")  # the same Markdown rendering
    held.released.set()
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator(".msg-body strong")).to_have_text("4")
    expect(reply.locator(".msg-body")).not_to_contain_text("plus")  # the answer is apart from the thoughts
    fits(page)

    page.reload()
    wait_ready(page)
    reply = last_reply(page)
    expect(reply.locator("summary", has_text="Thinking")).to_be_visible()
    expect(reply.locator(".thinking-body")).to_be_hidden()
    reply.locator("summary", has_text="Thinking").click()
    expect(reply.locator(".thinking-body")).to_contain_text("Two plus two is four.")
    expect(reply.get_by_role("group", name="Thinking")).to_have_count(1)


def test_regenerate_twice_and_walk_the_three_versions(
    page: Page, alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="First answer"), Reply(content="Second answer"), Reply(content="Third answer"))
    log_in(page)
    send(page, "Tell me something")
    expect(last_reply(page)).to_contain_text("First answer")
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    last_reply(page).get_by_role("button", name="Regenerate").click()
    expect(last_reply(page)).to_contain_text("Second answer")
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    last_reply(page).get_by_role("button", name="Regenerate").click()
    expect(last_reply(page)).to_contain_text("Third answer")
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    expect(page.locator('[data-role="assistant"]')).to_have_count(1)
    expect(last_reply(page)).to_contain_text("3 / 3")
    expect(last_reply(page).get_by_role("button", name="Next version")).to_be_disabled()
    fits(page)

    last_reply(page).get_by_role("button", name="Previous version").click()
    expect(last_reply(page)).to_contain_text("Second answer")
    expect(last_reply(page)).to_contain_text("2 / 3")
    last_reply(page).get_by_role("button", name="Previous version").click()
    expect(last_reply(page)).to_contain_text("First answer")
    expect(last_reply(page)).to_contain_text("1 / 3")
    expect(last_reply(page).get_by_role("button", name="Previous version")).to_be_disabled()
    last_reply(page).get_by_role("button", name="Next version").click()
    expect(last_reply(page)).to_contain_text("Second answer")

    page.reload()  # the choice is stored
    wait_ready(page)
    expect(last_reply(page)).to_contain_text("Second answer")
    expect(last_reply(page)).to_contain_text("2 / 3")

    # A follow-up continues the branch on screen: the upstream hears the second answer.
    fake_upstream.queue(Reply(content="Follow-up answer"))
    send(page, "And then?")
    expect(last_reply(page)).to_contain_text("Follow-up answer")
    assert fake_upstream.last.body is not None
    assert [m["content"] for m in fake_upstream.last.body["messages"]] == [
        "Tell me something",
        "Second answer",
        "And then?",
    ]


def test_edit_an_earlier_message_and_find_the_old_branch_intact(
    page: Page, alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="Answer A"), Reply(content="Answer B"), Reply(content="Answer C"))
    log_in(page)
    send(page, "Question one")
    expect(last_reply(page)).to_contain_text("Answer A")
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    send(page, "Question two")
    expect(last_reply(page)).to_contain_text("Answer B")
    expect(last_reply(page)).to_have_attribute("data-status", "complete")

    first = page.locator('[data-role="user"]').first
    first.get_by_role("button", name="Edit").click()
    page.get_by_role("textbox", name="Edit message").fill("Question one, sharper")
    page.get_by_role("button", name="Save and send").click()
    expect(last_reply(page)).to_contain_text("Answer C")
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    expect(page.locator('[data-role="user"]')).to_have_count(1)
    question = page.locator('[data-role="user"]').first
    expect(question).to_contain_text("Question one, sharper")
    expect(question).to_contain_text("2 / 2")
    assert fake_upstream.last.body is not None
    assert [m["content"] for m in fake_upstream.last.body["messages"]] == ["Question one, sharper"]
    fits(page)

    question.get_by_role("button", name="Previous version").click()
    expect(page.locator('[data-role="user"]')).to_have_count(2)
    expect(page.locator('[data-role="user"]').first).to_contain_text("1 / 2")
    texts = page.locator("#messages .msg-body")
    expect(texts).to_have_text(["Question one", "Answer A", "Question two", "Answer B"])
    page.locator('[data-role="user"]').first.get_by_role("button", name="Next version").click()
    expect(texts).to_have_text(["Question one, sharper", "Answer C"])


def test_the_settings_panel_reaches_the_upstream_and_explains_a_refusal(
    page: Page, alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    log_in(page)
    details = page.locator("#model-details")
    expect(details).to_contain_text("A small thinker")
    expect(details).to_contain_text("8,192-token context")
    expect(details).to_contain_text("$0.15 in / $0.6 out per million tokens")
    expect(details).to_contain_text("reasoning")
    page.get_by_label("Model").select_option("fake/vision")
    expect(details).to_contain_text("vision")
    expect(details).not_to_contain_text("tools")
    page.get_by_label("Model").select_option("fake/small")

    # Chosen before the first message, used from it on.
    page.get_by_role("button", name="Settings").click()
    dialog = page.get_by_role("dialog", name="Conversation settings")
    expect(dialog).to_be_visible()
    fits(page)
    dialog.get_by_label("System prompt").fill("Answer in French.")
    dialog.get_by_label("Temperature").fill("0.4")
    dialog.get_by_label("Max output tokens").fill("200")
    dialog.get_by_role("button", name="Save settings").click()
    expect(dialog).to_be_hidden()
    send(page, "Hello")
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    sent = fake_upstream.last.body
    assert sent is not None
    assert sent["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert (sent["temperature"], sent["max_tokens"]) == (0.4, 200)

    page.get_by_role("button", name="Settings").click()
    expect(dialog.get_by_label("Temperature")).to_have_value("0.4")
    dialog.get_by_label("Temperature").fill("7")
    dialog.get_by_role("button", name="Save settings").click()
    expect(dialog.get_by_role("alert")).to_contain_text("2")  # the server's reason, the panel still open
    expect(dialog).to_be_visible()
    dialog.get_by_label("Temperature").fill("1.1")
    dialog.get_by_label("Max output tokens").fill("")
    dialog.get_by_role("button", name="Save settings").click()
    expect(dialog).to_be_hidden()
    stored = Conversation.objects.get(owner=alice)
    assert (stored.temperature, stored.max_output_tokens, stored.system_prompt) == (1.1, None, "Answer in French.")
    send(page, "Again")
    expect(page.locator('[data-role="assistant"]')).to_have_count(2)
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    sent = fake_upstream.last.body
    assert sent is not None and (sent["temperature"], sent["max_tokens"]) == (1.1, 512)  # the model's limit again
