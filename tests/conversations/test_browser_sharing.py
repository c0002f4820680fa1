"""End to end in headless Chromium: share, open logged out, revoke; export; projects; temporary chats.

Every test runs at desktop width and at 375 px (a phone), where the list is a panel opened on demand.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from conversations.models import Conversation, Project, Share
from tests.browser import log_in, send, wait_ready
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer
from usage.models import UsageRecord

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


@pytest.fixture
def models(fake_upstream: FakeUpstream, transactional_db: None) -> list[LanguageModel]:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=10)
    return [
        LanguageModel.objects.create(public_id="fake/small", provider=provider, upstream_model="fake-small"),
        LanguageModel.objects.create(public_id="fake/large", provider=provider, upstream_model="fake-large"),
    ]


@pytest.fixture(params=[1200, 375], ids=["desktop", "phone"])
def width(request: pytest.FixtureRequest) -> int:
    return int(request.param)


def new_page(chromium_browser: Browser, live_server: LiveServer, width: int, errors: list[str]) -> Page:
    context = chromium_browser.new_context(
        base_url=live_server.url,
        viewport={"width": width, "height": 800},
        accept_downloads=True,
        timezone_id="UTC",  # the browser's days (the list's groups) are then the test's
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
    return page


@pytest.fixture
def pages(chromium_browser: Browser, live_server: LiveServer, width: int) -> Iterator[list[Page]]:
    """A signed-in page, and a second browser (another cookie jar) for a stranger; both checked for errors."""
    errors: list[str] = []
    opened = [new_page(chromium_browser, live_server, width, errors) for _ in range(2)]
    yield opened
    for page in opened:
        assert page.evaluate("window.__pwned") is None
        page.context.close()
    assert errors == [], f"JavaScript errors or dialogs on the page: {errors}"


def last_reply(page: Page):  # type: ignore[no-untyped-def]
    return page.locator('[data-role="assistant"]').last


def sidebar(page: Page) -> None:
    """Brings the list panel into view on a phone (on a desktop it always is)."""
    opener = page.get_by_role("button", name="Show conversations")
    if opener.is_visible():
        opener.click()
        expect(page.get_by_role("navigation", name="Conversations")).to_be_in_viewport()


def open_menu(page: Page) -> None:
    page.get_by_label("Conversation menu").click()


def test_share_open_logged_out_then_revoke_and_the_link_is_a_404(
    pages: list[Page], alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    page, stranger = pages
    fake_upstream.queue(Reply(content="**Bold** answer " + XSS))
    log_in(page)
    send(page, "Question " + XSS)
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    conversation = Conversation.objects.get(owner=alice)
    Conversation.objects.filter(pk=conversation.pk).update(title="Title " + XSS, system_prompt="SECRET-PROMPT")

    open_menu(page)
    page.get_by_role("button", name="Share").click()
    link_box = page.get_by_label("Link")
    expect(link_box).to_have_value(re.compile(r"/s/[\w-]{43}/$"))
    link = link_box.input_value()
    page.get_by_role("button", name="Done").click()
    fake_upstream.queue(Reply(content="A later answer"))
    send(page, "LATER-PRIVATE question")
    expect(last_reply(page)).to_contain_text("A later answer")

    stranger.goto(link)
    wait_ready(stranger)
    shared = stranger.get_by_role("log", name="Messages")
    expect(shared.locator('[data-role="assistant"] strong')).to_have_text("Bold")
    expect(shared.locator('[data-role="user"]')).to_contain_text("Question")
    expect(stranger.get_by_role("heading", level=1)).to_have_text("Title " + XSS)
    assert "LATER-PRIVATE" not in stranger.content() and "SECRET-PROMPT" not in stranger.content()
    assert shared.locator("script, img[onerror], [onerror]").count() == 0
    assert stranger.locator('meta[name="robots"]').get_attribute("content") == "noindex, nofollow"
    assert stranger.evaluate("document.documentElement.scrollWidth") <= stranger.viewport_size["width"]  # type: ignore[index]

    page.goto("/accounts/profile/")
    shares = page.get_by_role("table", name="Your share links")
    expect(shares).to_contain_text("Title")
    page.get_by_role("button", name=re.compile("^Revoke the link to Title")).click()
    expect(page.get_by_role("status").first).to_contain_text("revoked")
    assert not Share.objects.exists()
    response = stranger.goto(link)
    assert response is not None and response.status == 404


def test_export_markdown_and_json_download_the_conversation(
    pages: list[Page], alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    page = pages[0]
    fake_upstream.queue(Reply(content="Lisbon has *trams*."))
    log_in(page)
    send(page, "Tell me about Lisbon")
    expect(last_reply(page)).to_have_attribute("data-status", "complete")
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("Title").fill("Lisbon notes")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Lisbon notes")).to_be_visible()

    open_menu(page)
    with page.expect_download() as markdown:
        page.get_by_role("link", name="Export Markdown").click()
    assert markdown.value.suggested_filename == "Lisbon-notes.md"
    text = Path(markdown.value.path()).read_text(encoding="utf-8")
    assert text.startswith("# Lisbon notes\n")
    assert "## You · " in text and "Tell me about Lisbon" in text
    assert "## Assistant (fake/large) · " in text and "Lisbon has *trams*." in text

    open_menu(page)
    with page.expect_download() as exported:
        page.get_by_role("link", name="Export JSON").click()
    assert exported.value.suggested_filename == "Lisbon-notes.json"
    data = json.loads(Path(exported.value.path()).read_text(encoding="utf-8"))
    assert data["title"] == "Lisbon notes"
    assert [(m["role"], m["content"]) for m in data["messages"]] == [
        ("user", "Tell me about Lisbon"),
        ("assistant", "Lisbon has *trams*."),
    ]
    assert data["messages"][1]["model"] == "fake/large"
    assert all(m["created_at"] and m["attachments"] == [] for m in data["messages"])


def test_a_projects_system_prompt_reaches_the_upstream_and_chats_move_out(
    pages: list[Page], alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    page = pages[0]
    fake_upstream.queue(Reply(content="In verse I answer."))
    log_in(page)
    sidebar(page)
    projects = page.get_by_role("navigation", name="Projects")
    projects.get_by_role("button", name="New project").click()
    dialog = page.get_by_role("dialog", name="New project")
    dialog.get_by_label("Name").fill("Poems " + XSS)
    dialog.get_by_label("New chats use").select_option("fake/large")
    dialog.get_by_label("Instructions for its chats").fill("Answer in verse.")
    dialog.get_by_role("button", name="Create project").click()
    chosen = projects.get_by_role("button", name="Poems " + XSS)
    expect(chosen).to_have_attribute("aria-pressed", "true")
    project = Project.objects.get(owner=alice)
    if page.get_by_role("button", name="Hide conversations").is_visible():
        page.get_by_role("button", name="Hide conversations").click()

    send(page, "A poem about the sea")
    expect(last_reply(page)).to_contain_text("In verse I answer.")
    sent = fake_upstream.last.body
    assert sent is not None
    assert sent["model"] == "fake-large"
    assert sent["messages"][0] == {"role": "system", "content": "Answer in verse."}
    conversation = Conversation.objects.get(owner=alice)
    assert conversation.project_id == project.pk

    sidebar(page)
    nav = page.get_by_role("navigation", name="Conversations")
    expect(nav.get_by_role("link", name="A poem about the sea")).to_be_visible()
    if page.get_by_role("button", name="Hide conversations").is_visible():
        page.get_by_role("button", name="Hide conversations").click()
    open_menu(page)
    page.get_by_label("Project", exact=True).select_option("")
    expect(nav.get_by_role("link", name="A poem about the sea")).to_have_count(0)  # the list shows Poems only
    deadline = time.monotonic() + 15
    while Conversation.objects.get(pk=conversation.pk).project_id is not None:
        assert time.monotonic() < deadline, "the move was not stored"
        time.sleep(0.05)
    sidebar(page)
    projects.get_by_role("button", name="All conversations").click()
    expect(nav.get_by_role("link", name="A poem about the sea")).to_be_visible()


def test_a_temporary_chat_stays_out_of_the_list_yet_its_usage_is_in_the_ledger(
    pages: list[Page], alice: User, models: list[LanguageModel], fake_upstream: FakeUpstream
) -> None:
    page = pages[0]
    fake_upstream.queue(Reply(content="Forgotten soon."))
    log_in(page)
    sidebar(page)
    switch = page.get_by_role("switch", name="Temporary chat")
    expect(switch).to_have_attribute("aria-checked", "false")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    if page.get_by_role("button", name="Hide conversations").is_visible():
        page.get_by_role("button", name="Hide conversations").click()
    send(page, "Off the record")
    expect(last_reply(page)).to_contain_text("Forgotten soon.")
    assert Conversation.objects.get(owner=alice).temporary
    expect(page).to_have_url(re.compile(r"/$"))  # no address of its own
    nav = page.get_by_role("navigation", name="Conversations")
    expect(nav.get_by_role("link", name="Off the record")).to_have_count(0)
    deadline = time.monotonic() + 15
    while not UsageRecord.objects.filter(user=alice).exists():
        assert time.monotonic() < deadline, "the usage never reached the ledger"
        time.sleep(0.05)

    page.reload()
    wait_ready(page)
    sidebar(page)
    expect(nav.get_by_role("link", name="Off the record")).to_have_count(0)
    expect(page.get_by_role("switch", name="Temporary chat")).to_have_attribute("aria-checked", "false")
    assert not Conversation.objects.filter(owner=alice).exists()
    assert UsageRecord.objects.filter(user=alice).count() == 1


def test_the_list_is_grouped_by_date_pinned_first_and_loads_more_as_it_scrolls(
    pages: list[Page], alice: User, models: list[LanguageModel]
) -> None:
    page = pages[0]
    now = timezone.localtime()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    old = [
        Conversation(owner=alice, title=f"Old {i:03d}", updated_at=midnight - timedelta(days=30, minutes=i))
        for i in range(120)
    ]
    Conversation.objects.bulk_create(old)
    for title, when, pinned in [
        ("Pinned long ago", midnight - timedelta(days=90), True),
        ("From today", now, False),
        ("From yesterday", midnight - timedelta(hours=6), False),
        ("From last week", midnight - timedelta(days=4), False),
    ]:
        Conversation.objects.create(owner=alice, title=title, updated_at=when, pinned=pinned)
    log_in(page)
    sidebar(page)
    nav = page.get_by_role("navigation", name="Conversations")
    headings = nav.get_by_role("heading")
    expect(headings).to_have_text(["Pinned", "Today", "Yesterday", "Previous 7 days", "Older"])
    groups = nav.locator("li.list-group")
    expect(groups.nth(0).get_by_role("link")).to_have_text(["Pinned long ago"])
    expect(groups.nth(1).get_by_role("link")).to_have_text(["From today"])
    expect(groups.nth(2).get_by_role("link")).to_have_text(["From yesterday"])
    expect(groups.nth(3).get_by_role("link")).to_have_text(["From last week"])
    older = groups.nth(4).get_by_role("link")
    expect(older).to_have_count(46)  # the first page holds 50 rows
    nav.evaluate("nav => { nav.scrollTop = nav.scrollHeight; }")
    expect(older).to_have_count(96)
    nav.evaluate("nav => { nav.scrollTop = nav.scrollHeight; }")
    expect(older).to_have_count(120)
    expect(older.last).to_have_text("Old 119")
