"""Headless Chromium for the browser tests: one browser per module (the `chromium_browser` fixture in
tests/conftest.py), a fresh context per test, and the steps every such test takes."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import PASSWORD
from tests.needs import CHROMIUM_ARGS, chromium


def launch() -> Iterator[Browser]:
    executable = chromium()
    # Playwright's sync API keeps an event loop running in this thread, which makes Django refuse
    # the test's own ORM calls; they are plain synchronous code here, so allow them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def wait_ready(page: Page) -> None:
    """The page's script has run (read from the DOM: evaluating script would break under a strict CSP)."""
    page.locator('body[data-chat-ready="true"]').wait_for(state="attached")


def log_in(page: Page, username: str = "alice") -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("log in", re.I)).click()
    wait_ready(page)


def open_page(browser: Browser, base_url: str, width: int, timeout_ms: int = 15_000) -> Iterator[Page]:
    """A page in a fresh context `width` pixels wide; after the test, no JavaScript error may have happened on it."""
    context = browser.new_context(base_url=base_url, viewport={"width": width, "height": 800})
    context.set_default_timeout(timeout_ms)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def send(page: Page, text: str) -> None:
    """Types a chat message and presses Enter, as a person does."""
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")
