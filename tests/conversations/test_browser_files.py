"""Attaching files in real headless Chromium: paste, drop and pick; what reaches the upstream; warnings."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from tests import sample_files
from tests.browser import log_in, open_page, send
from tests.fake_upstream import FakeUpstream
from tests.live_server import LiveServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def models(fake_upstream: FakeUpstream, transactional_db: None) -> list[LanguageModel]:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=10)
    return [
        LanguageModel.objects.create(public_id="fake/small", provider=provider, upstream_model="fake-small"),
        LanguageModel.objects.create(
            public_id="fake/vision", provider=provider, upstream_model="fake-vision", vision=True
        ),
        LanguageModel.objects.create(
            public_id="fake/tiny", provider=provider, upstream_model="fake-tiny", context_length=512
        ),
    ]


# Generous timeouts: the machine may be busy with other suites.
@pytest.fixture
def page(chromium_browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    yield from open_page(chromium_browser, live_server.url, 1200, timeout_ms=30_000)


@pytest.fixture
def phone(chromium_browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    yield from open_page(chromium_browser, live_server.url, 375, timeout_ms=30_000)


# A file put on the page as the browser does for a paste or a drop (a real File in a DataTransfer).
TRANSFER = """([kind, name, type, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type }));
  if (kind === "paste") {
    document.getElementById("message").dispatchEvent(
      new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
  } else {
    const zone = document.querySelector(".chat-main");
    zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: data, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
  }
}"""


def transfer(page: Page, kind: str, name: str, mime: str, data: bytes) -> None:
    page.evaluate(TRANSFER, [kind, name, mime, base64.b64encode(data).decode()])


def pick(page: Page, name: str, mime: str, data: bytes) -> None:
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Attach").click()
    assert chooser.value.is_multiple()
    chooser.value.set_files([{"name": name, "mimeType": mime, "buffer": data}])


def ready(page: Page, count: int) -> None:
    expect(page.locator('#file-list [data-state="ready"]')).to_have_count(count)


def last_reply(page: Page):  # type: ignore[no-untyped-def]
    return page.locator('[data-role="assistant"]').last


def test_a_pasted_screenshot_reaches_a_vision_model_as_an_image_url_part(
    page: Page, alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    log_in(page)
    page.get_by_label("Model").select_option("fake/vision")
    image = sample_files.png(8, 8)
    transfer(page, "paste", "image.png", "image/png", image)
    ready(page, 1)
    expect(page.locator("#files-notice")).to_be_hidden()
    send(page, "What is in this screenshot?")
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    expect(page.locator("#file-list")).to_be_hidden()

    body = fake_upstream.last.body
    assert body is not None and body["model"] == "fake-vision"
    assert body["messages"][-1]["content"] == [
        {"type": "text", "text": "What is in this screenshot?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(image).decode()}},
    ]
    thumb = page.locator('[data-role="user"] .msg-files img')
    expect(thumb).to_have_attribute("alt", "image.png")
    expect(thumb).to_have_js_property("naturalWidth", 8)  # served to its owner through /files/<id>/


def test_a_picked_pdf_and_a_dropped_file_reach_the_upstream_and_survive_a_reload(
    page: Page, alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    log_in(page)
    pick(page, "minutes.pdf", "application/pdf", sample_files.pdf("The meeting moved to Thursday"))
    ready(page, 1)
    transfer(page, "drop", "notes.md", "text/markdown", b"# Notes\n\nBring the slides.")
    ready(page, 2)
    chips = page.locator("#file-list")
    expect(chips).to_contain_text("minutes.pdf")
    expect(chips).to_contain_text("10 tokens")  # "The meeting moved to Thursday": 29 bytes
    send(page, "When is the meeting, and what do I bring?")
    expect(last_reply(page)).to_have_attribute("data-status", "complete")

    content = fake_upstream.last.body["messages"][-1]["content"]  # type: ignore[index]
    assert content == (
        '<file name="minutes.pdf">\nThe meeting moved to Thursday\n</file>\n\n'
        '<file name="notes.md">\n# Notes\n\nBring the slides.\n</file>\n\n'
        "When is the meeting, and what do I bring?"
    )
    page.reload()
    files = page.locator('[data-role="user"] .msg-files a')
    expect(files).to_have_count(2)
    expect(files.first).to_contain_text("minutes.pdf")
    expect(files.first).to_have_attribute("href", re.compile(r"^/files/\d+/$"))


def test_a_model_without_vision_warns_before_sending_and_keeps_the_message(
    page: Page, alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    log_in(page)
    expect(page.get_by_label("Model")).to_have_value("fake/small")
    transfer(page, "paste", "chart.png", "image/png", sample_files.png())
    ready(page, 1)
    notice = page.locator("#files-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("fake/small does not take images")
    send(page, "Explain this chart")
    expect(page.locator("#chat-alert")).to_contain_text("fake/small does not take images")
    expect(page.get_by_role("textbox", name="Message")).to_have_value("Explain this chart")
    expect(page.locator('[data-role="user"]')).to_have_count(0)
    assert fake_upstream.requests == []

    page.get_by_label("Model").select_option("fake/vision")
    expect(notice).to_be_hidden()
    page.get_by_role("textbox", name="Message").press("Enter")
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    assert fake_upstream.last.body["messages"][-1]["content"][1]["type"] == "image_url"  # type: ignore[index]


def test_a_message_too_long_for_the_context_is_refused_before_sending(
    page: Page, alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    log_in(page)
    page.get_by_label("Model").select_option("fake/tiny")
    pick(page, "short.txt", "text/plain", b"A short note.")
    ready(page, 1)
    long_text = "lorem ipsum " * 300
    send(page, long_text)
    expect(page.locator("#chat-alert")).to_contain_text("more than fake/tiny reads at once")
    expect(page.get_by_role("textbox", name="Message")).to_have_value(long_text)
    expect(page.locator('[data-role="user"]')).to_have_count(0)
    send(page, "Summarise it")
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    sent = fake_upstream.last.body["messages"][-1]["content"]  # type: ignore[index]
    assert sent == '<file name="short.txt">\nA short note.\n</file>\n\nSummarise it'


def test_a_refused_upload_says_why_and_a_hostile_name_stays_text(
    page: Page, alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    log_in(page)
    pick(page, "holiday.jpg", "image/jpeg", b"MZ\x90\x00" + bytes(300))
    expect(page.locator("#chat-alert")).to_contain_text("not what its name says")
    expect(page.locator("#file-list li")).to_have_count(0)
    hostile = '<img src=x onerror="window.__pwned=1">.txt'
    pick(page, hostile, "text/plain", b"hello")
    ready(page, 1)
    send(page, "read it")
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    expect(page.locator('[data-role="user"] .msg-files .file-name')).to_have_text(hostile)
    page.reload()
    expect(page.locator('[data-role="user"] .msg-files .file-name')).to_have_text(hostile)
    page.wait_for_timeout(300)  # give any planted handler the chance to fire
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#messages img[onerror]").count() == 0


def test_attaching_works_at_phone_width(
    phone: Page, alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    log_in(phone)
    expect(phone.get_by_role("button", name="Attach")).to_be_in_viewport()
    pick(phone, "a-file-with-a-rather-long-name-for-a-phone.csv", "text/csv", b"city,people\nLisbon,545000\n")
    ready(phone, 1)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    send(phone, "Which city?")
    expect(last_reply(phone)).to_have_attribute("data-status", "complete")
    expect(phone.locator('[data-role="user"] .msg-files a')).to_be_in_viewport()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    assert "Lisbon,545000" in fake_upstream.last.body["messages"][-1]["content"]  # type: ignore[index]
