"""In real headless Chromium: log in, create a key on the profile page, copy it, use it with the `openai`
SDK against the live server, see the usage chart drawn, and revoke the key through the confirmation page."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from tests.conftest import PASSWORD
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer
from tests.needs import CHROMIUM_ARGS, chromium

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def page(live_server: LiveServer) -> Iterator[Any]:
    """A Chromium page on the live server. Playwright's sync API runs an event loop in this thread, so
    the ORM can't be used while it is open: tests request their data fixtures before this one."""
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile_dir, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile_dir,
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            base_url=live_server.url,
            viewport={"width": 1200, "height": 900},
        )
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        context.set_default_timeout(15_000)
        browser_page = context.pages[0] if context.pages else context.new_page()
        errors: list[str] = []
        browser_page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield browser_page
        context.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def catalogue(fake_upstream: FakeUpstream) -> None:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, connect_timeout=2, read_timeout=10)
    for public_id in ("acme/chat-1", "acme/chat-2"):
        LanguageModel.objects.create(public_id=public_id, provider=provider, upstream_model="fake-small")


def test_create_a_key_in_the_browser_and_use_it_with_the_openai_sdk(
    alice: User, catalogue: None, fake_upstream: FakeUpstream, live_server: LiveServer, page: Any
) -> None:
    from playwright.sync_api import expect

    page.goto("/accounts/login/?next=/accounts/profile/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()

    page.get_by_label("Name").fill("my IDE")
    page.get_by_role("button", name="Create key").click()
    secret_node = page.get_by_test_id("new-key")
    expect(secret_node).to_be_visible()
    secret = secret_node.inner_text().strip()
    assert secret.startswith("sk-") and len(secret) == 46

    page.get_by_role("button", name="Copy key").click()
    expect(page.get_by_role("button", name="Copy key")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    # The snippets carry this server's address, the key, and follow the model picked for them.
    python_snippet = page.locator("#snippet-python")
    expect(python_snippet).to_contain_text(f'base_url="{live_server.url}/v1"')
    expect(python_snippet).to_contain_text(secret)
    page.get_by_label("Model for the examples").select_option("acme/chat-2")
    expect(python_snippet).to_contain_text('model="acme/chat-2"')
    expect(page.locator("#snippet-continue")).to_contain_text('model: "acme/chat-2"')

    fake_upstream.queue(Reply(content="Hello from the SDK test"))
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=secret, max_retries=0, timeout=20)
    reply = client.chat.completions.create(model="acme/chat-2", messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content == "Hello from the SDK test"
    assert reply.model == "acme/chat-2"

    # Later visits never show the secret again; the list shows the key with its use.
    deadline = time.monotonic() + 10
    while True:
        page.goto("/accounts/profile/")
        row = page.locator("tr", has_text="my IDE")
        if row.locator("td.num").first.inner_text() == "1" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert secret not in page.content()
    expect(row.locator("td.num").first).to_have_text("1")
    expect(row).to_contain_text(f"sk-{secret[3:11]}…{secret[-4:]}")

    chart = page.locator("#usage-chart")
    expect(chart).to_have_attribute("data-drawn", "true")
    expect(chart).to_have_attribute("data-series", "1")

    # Revoke through the confirmation page; the very next call fails.
    row.get_by_role("link", name="Revoke my IDE").click()
    expect(page.get_by_role("heading", name="Revoke “my IDE”?")).to_be_visible()
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("status").first).to_contain_text("is revoked")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="acme/chat-2", messages=[{"role": "user", "content": "Hi"}])
