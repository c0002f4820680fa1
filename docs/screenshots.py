"""Screenshots of the chat page for the README, taken in headless Chromium (Playwright) against a live
server and the fake upstream of the test suite: desktop and phone width, light and dark theme.

    make screenshots        # writes docs/screenshots/chat-{desktop,phone}-{light,dark}.png

It runs as a pytest module with the suite's fixtures (docs/conftest.py), and is no part of the suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from tests import sample_files
from tests.browser import log_in
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

OUT = Path(__file__).resolve().parent / "screenshots"
REPLY = (
    "The chart shows **sign-ups per week**: steady growth, with a jump after the launch in week 6.\n\n"
    "From the minutes:\n\n"
    "- the beta opens on **Thursday**;\n"
    "- bring the slides and the numbers.\n\n"
    "To plot the same data yourself:\n\n"
    "```python\nimport matplotlib.pyplot as plt\n\n"
    "weeks = range(1, 9)\nsignups = [12, 15, 19, 22, 25, 61, 70, 78]\n"
    "plt.plot(weeks, signups, marker='o')\nplt.show()\n```"
)


def chart() -> bytes:
    """A small bar chart, drawn as a PNG without any imaging library."""
    import struct
    import zlib

    width, height, bars = 240, 120, [12, 15, 19, 22, 25, 61, 70, 78]
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            bar, inside = divmod(x, 30)
            top = height - 8 - int(bars[bar] * 1.3)
            row += bytes((47, 111, 222) if 4 <= inside <= 25 and top <= y < height - 8 else (246, 247, 249))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def test_screenshots(chromium_browser: Any, live_server: LiveServer, alice: User, fake_upstream: FakeUpstream) -> None:
    provider = Provider.objects.create(name="openai", base_url=fake_upstream.base_url, read_timeout=10)
    LanguageModel.objects.create(
        public_id="gpt-4o-mini", provider=provider, upstream_model="gpt-4o-mini", vision=True, context_length=128000
    )
    OUT.mkdir(exist_ok=True)
    context = chromium_browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(20_000)
    page = context.new_page()
    log_in(page)
    for title in ("Trip to Lisbon in May", "Quarterly report summary", "Regex for ISO dates"):
        page.goto("/")  # a few earlier conversations for the list
        page.get_by_role("textbox", name="Message").fill(title)
        page.get_by_role("textbox", name="Message").press("Enter")
        expect(page.locator('[data-role="assistant"]').last).to_have_attribute("data-status", "complete")
    fake_upstream.queue(Reply(content=REPLY, chunks=20))
    page.goto("/")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Attach").click()
    chooser.value.set_files(
        [
            {"name": "signups.png", "mimeType": "image/png", "buffer": chart()},
            {
                "name": "minutes.pdf",
                "mimeType": "application/pdf",
                "buffer": sample_files.pdf("Beta opens on Thursday.", "Bring the slides and the numbers."),
            },
        ]
    )
    expect(page.locator('#file-list [data-state="ready"]')).to_have_count(2)
    page.get_by_role("textbox", name="Message").fill("What does the chart show, and what did the meeting decide?")
    page.get_by_role("textbox", name="Message").press("Enter")
    expect(page.locator('[data-role="assistant"]').last).to_have_attribute("data-status", "complete")
    url = page.url
    context.close()

    for scheme in ("light", "dark"):
        for device, viewport in (("desktop", {"width": 1280, "height": 860}), ("phone", {"width": 375, "height": 780})):
            context = chromium_browser.new_context(
                base_url=live_server.url,
                viewport=viewport,
                color_scheme=scheme,
                device_scale_factor=2 if device == "phone" else 1,
            )
            context.set_default_timeout(20_000)
            page = context.new_page()
            log_in(page)
            page.goto(url)
            expect(page.locator('[data-role="assistant"]').last).to_have_attribute("data-status", "complete")
            expect(page.locator(".msg-files img")).to_have_js_property("naturalWidth", 240)
            page.get_by_role("textbox", name="Message").fill("Draft the announcement")
            if device == "phone":  # the files and the start of the reply, rather than its end
                page.locator('[data-role="user"] .msg-files').evaluate("(files) => files.scrollIntoView()")
            page.screenshot(path=str(OUT / f"chat-{device}-{scheme}.png"))
            context.close()
