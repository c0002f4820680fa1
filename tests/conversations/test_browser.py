"""End to end in real headless Chromium against a live server and the fake upstream.

One browser for the module, a fresh context (cookies) per test. In CI (CI=true) a missing chromium
fails these tests instead of skipping them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from conversations.services import MAX_MESSAGE_CHARS
from tests.browser import log_in, open_page, send, wait_ready
from tests.conftest import PASSWORD
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer
from tests.needs import CHROMIUM_ARGS, chromium

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def models(fake_upstream: FakeUpstream, transactional_db: None) -> list[LanguageModel]:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=10)
    return [
        LanguageModel.objects.create(public_id="fake/small", provider=provider, upstream_model="fake-small"),
        LanguageModel.objects.create(public_id="fake/large", provider=provider, upstream_model="fake-large"),
    ]


@pytest.fixture
def page(chromium_browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    yield from open_page(chromium_browser, live_server.url, 1200)


def last_reply(page: Page):  # type: ignore[no-untyped-def]
    return page.locator('[data-role="assistant"]').last


MARKDOWN = (
    "## Plan\n\nHere is **bold** text and a list:\n\n- one\n- two\n\n"
    "```python\ndef greet(name):\n    return f'hello {name}'\n```\n\nDone."
)


def test_sign_up_send_and_watch_markdown_and_code_stream_in(
    page: Page, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    upstream_reply = Reply(content=MARKDOWN, chunks=30, hold_after_chunks=10)
    fake_upstream.queue(upstream_reply)
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill("dora")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("navigation", name="Conversations")).to_be_visible()
    wait_ready(page)

    send(page, "Write a *greeting* function\nin Python")
    user = page.locator('[data-role="user"]').last
    expect(user).to_contain_text("greeting")
    expect(user.locator("em")).to_have_text("greeting")
    reply = last_reply(page)
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(reply.locator(".msg-body")).to_contain_text("Plan")  # text shows while it streams
    expect(reply).to_have_attribute("data-status", "streaming")
    upstream_reply.released.set()
    expect(reply).to_have_attribute("data-status", "complete")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()

    expect(reply.locator("h2")).to_have_text("Plan")
    expect(reply.locator("strong")).to_have_text("bold")
    expect(reply.locator("li")).to_have_count(2)
    code = reply.locator("pre code.hljs.language-python")
    expect(code).to_contain_text("def greet(name):")
    expect(code.locator("span.hljs-keyword").first).to_have_text("def")
    expect(reply.get_by_role("button", name="Copy code")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/c/\d+/$"))
    nav = page.get_by_role("navigation", name="Conversations")
    expect(nav.get_by_role("link", name="Write a greeting function")).to_be_visible()
    assert fake_upstream.last.body is not None
    assert fake_upstream.last.body["messages"][-1]["content"] == "Write a *greeting* function\nin Python"


XSS = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=2</script>",
    "[click me](javascript:window.__pwned=3)",
    '<svg><animate onbegin="window.__pwned=4" attributeName="x" dur="1s"></svg>',
    '<iframe srcdoc="<script>parent.__pwned=5</script>"></iframe>',
    '<a href="#" onclick="window.__pwned=6">x</a>',
    '<form><button formaction="javascript:window.__pwned=7">go</button></form>',
    '<details open ontoggle="window.__pwned=8"><summary>s</summary></details>',
]


def test_xss_payloads_from_the_user_and_the_model_never_execute(
    page: Page, alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    payload = "\n\n".join(XSS)
    fake_upstream.queue(Reply(content=payload, chunks=12, delay=0.02))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page)
    send(page, payload)
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    page.locator('[data-role="assistant"] .msg-body a').first.click()  # a javascript: link must do nothing
    page.wait_for_timeout(300)  # give any planted handler the chance to fire
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    messages = page.locator("#messages")
    assert messages.locator("script, iframe, form, [onerror], [onclick], [onbegin], [ontoggle]").count() == 0
    assert messages.locator('a[href^="javascript"]').count() == 0
    page.reload()
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None


def test_reload_mid_reply_continues_then_stop_keeps_the_partial_text(
    page: Page, alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    words = " ".join(f"w{i}" for i in range(300))
    fake_upstream.queue(Reply(content=words, chunks=300, hold_after_chunks=50))
    log_in(page)
    send(page, "Talk for a while")
    reply = last_reply(page)
    expect(reply.locator(".msg-body")).to_contain_text("w10 ")
    page.reload()
    reply = last_reply(page)
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(reply.locator(".msg-body")).to_contain_text("w5 ")  # the text so far, right away
    expect(reply.locator(".msg-body")).to_contain_text("w40 ")  # and it goes on live
    page.get_by_role("button", name="Stop").click()
    expect(reply).to_have_attribute("data-status", "interrupted")
    expect(reply).to_contain_text("Stopped.")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    shown = reply.locator(".msg-body").inner_text()
    assert "w40" in shown and "w299" not in shown
    page.reload()
    expect(last_reply(page)).to_have_attribute("data-status", "interrupted")
    assert "w40" in last_reply(page).locator(".msg-body").inner_text()


def test_rename_switch_model_regenerate_and_delete(
    page: Page, alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="First answer"), Reply(content="Second answer"), Reply(content="Third answer"))
    log_in(page)
    send(page, "Plan a trip")
    expect(last_reply(page)).to_contain_text("First answer")

    page.get_by_role("button", name="Rename").click()
    page.get_by_label("Title").fill("Lisbon in May")
    page.get_by_role("button", name="Save").click()
    nav = page.get_by_role("navigation", name="Conversations")
    expect(nav.get_by_role("link", name="Lisbon in May")).to_be_visible()
    expect(page.get_by_role("heading", name="Lisbon in May")).to_be_visible()

    page.get_by_label("Model").select_option("fake/large")
    page.wait_for_load_state("networkidle")
    send(page, "And the hotels?")
    expect(last_reply(page)).to_contain_text("Second answer")
    assert fake_upstream.last.body is not None
    assert fake_upstream.last.body["model"] == "fake-large"
    assert [m["content"] for m in fake_upstream.last.body["messages"]] == [
        "Plan a trip",
        "First answer",
        "And the hotels?",
    ]

    last_reply(page).get_by_role("button", name="Regenerate").click()
    expect(last_reply(page)).to_contain_text("Third answer")
    expect(page.locator('[data-role="assistant"]')).to_have_count(2)

    page.reload()
    expect(page.get_by_label("Model")).to_have_value("fake/large")
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete conversation?")
    dialog.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(nav.get_by_role("link", name="Lisbon in May")).to_have_count(0)


def test_a_refused_edit_keeps_the_edited_text_and_a_stored_one_closes_the_editor(
    page: Page, alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="First answer"), Reply(content="Better answer"))
    log_in(page)
    send(page, "Hello")
    expect(last_reply(page)).to_contain_text("First answer")
    page.locator('[data-role="user"]').get_by_role("button", name="Edit").click()
    editor = page.get_by_role("textbox", name="Edit message")
    too_long = "x" * (MAX_MESSAGE_CHARS + 1)
    editor.fill(too_long)
    page.get_by_role("button", name="Save and send").click()
    expect(page.locator("#chat-alert")).to_contain_text("too long")
    expect(editor).to_be_visible()
    assert editor.input_value() == too_long
    editor.fill("Hello again")
    page.get_by_role("button", name="Save and send").click()
    expect(last_reply(page)).to_contain_text("Better answer")
    expect(editor).to_have_count(0)
    expect(page.locator('[data-role="user"]')).to_have_text(re.compile("Hello again"))


def test_small_screen_and_keyboard_use(
    chromium_browser: Browser,
    live_server: LiveServer,
    alice: User,
    models: list[LanguageModel],
    fake_upstream: FakeUpstream,
) -> None:
    context = chromium_browser.new_context(base_url=live_server.url, viewport={"width": 375, "height": 740})
    try:
        page = context.new_page()
        log_in(page)
        box = page.get_by_role("textbox", name="Message")
        expect(box).to_be_focused()
        box.type("line one")
        box.press("Shift+Enter")
        box.type("line two")
        assert box.input_value() == "line one\nline two"
        box.press("Enter")
        expect(last_reply(page)).to_have_attribute("data-status", "complete")
        assert page.locator('[data-role="user"]').last.inner_text().count("line") == 2
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        nav = page.get_by_role("navigation", name="Conversations")
        expect(nav).not_to_be_in_viewport()
        # Tab must not wander through the list while it is off screen.
        page.locator("body").focus()
        for _ in range(25):
            page.keyboard.press("Tab")
            assert page.evaluate("!document.activeElement.closest('#chat-sidebar')"), "focus went off screen"
        page.get_by_role("button", name="Show conversations").click()
        expect(nav).to_be_in_viewport()
        expect(page.get_by_role("searchbox", name="Search conversations")).to_be_focused()
        page.keyboard.press("Escape")
        expect(nav).not_to_be_in_viewport()
        expect(page.get_by_role("button", name="Show conversations")).to_be_focused()
    finally:
        context.close()


def test_logging_out_in_another_tab_ends_the_chat_and_the_page_says_so_keeping_the_text(
    page: Page, alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="First answer"))
    log_in(page)
    send(page, "Hello")
    expect(last_reply(page)).to_contain_text("First answer")
    box = page.get_by_role("textbox", name="Message")
    box.fill("typed before the logout")

    other = page.context.new_page()
    other.goto("/")
    other.get_by_role("button", name="Log out").click()
    expect(other).to_have_url(re.compile(r"/accounts/login/"))

    expect(page.locator("#chat-alert")).to_contain_text("signed out")
    assert box.input_value() == "typed before the logout"
    box.press("Enter")
    expect(page.locator('[data-role="user"]')).to_have_count(1)


# What the site's Content-Security-Policy will say: scripts and styles from our origin only.
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'"
)


def test_the_chat_and_the_api_docs_work_under_a_strict_content_security_policy(
    chromium_browser: Browser,
    live_server: LiveServer,
    alice: User,
    models: list[LanguageModel],
    fake_upstream: FakeUpstream,
) -> None:
    # The policy is added to the answers on their way in (Playwright's route.fulfill); Chromium then no
    # longer knows the page came from loopback, and its local-network checks would refuse the socket.
    strict_browser = chromium_browser.browser_type.launch(
        executable_path=chromium(),
        args=[*CHROMIUM_ARGS, "--disable-features=LocalNetworkAccessChecks"],
        headless=True,
    )
    context = strict_browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)

    def with_csp(route):  # type: ignore[no-untyped-def]
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})

    context.route("**/*", with_csp)
    violations: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        fake_upstream.queue(Reply(content=MARKDOWN, chunks=10, delay=0.01))
        log_in(page)
        send(page, "Write a greeting function")
        reply = last_reply(page)
        expect(reply).to_have_attribute("data-status", "complete")
        expect(reply.locator("pre code.hljs.language-python")).to_contain_text("def greet(name):")

        page.goto("/api/docs/")
        expect(page.get_by_role("heading", name=re.compile("chatsite REST API"))).to_be_visible()
        expect(page.get_by_text("/api/conversations/{id}/messages/").first).to_be_visible()
    finally:
        context.close()
        strict_browser.close()
    assert violations == []
