"""A key's whole life against the real server: issued on the profile page, used with the official
`openai` SDK through /v1 in front of the fake upstream, limited to some models, expired, revoked, and
refused once its owner is deactivated. Usage it causes shows on the profile as the ledger has it."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import openai
import pytest
from django.db.models import Sum
from django.utils import timezone

from accounts.models import ApiKey, User
from catalogue.models import LanguageModel, Provider
from tests.accounts.helpers import SECRET_RE
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer
from tests.signed_in import sign_in
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def catalogue(fake_upstream: FakeUpstream) -> None:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, connect_timeout=2, read_timeout=10)
    for public_id in ("acme/chat-1", "acme/chat-2"):
        LanguageModel.objects.create(
            public_id=public_id,
            provider=provider,
            upstream_model="fake-small",
            input_price_per_million=1,
            output_price_per_million=2,
        )


def browser(live_server: LiveServer, user: User) -> httpx.Client:
    """A browser signed in as `user` on the live server: the pages and /v1 share one process, as a worker."""
    return sign_in(httpx.Client(base_url=live_server.url, timeout=20), user)


@pytest.fixture
def alice_browser(live_server: LiveServer, alice: User) -> httpx.Client:
    return browser(live_server, alice)


def issue(browser: httpx.Client, **data: object) -> str:
    response = browser.post("/accounts/profile/", data={"name": "e2e", **data})
    assert response.status_code == 200, response.text[:2000]
    match = SECRET_RE.search(response.content.decode())
    assert match
    return match.group(1)


def sdk(live_server: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=live_server.url + "/v1", api_key=key, max_retries=0, timeout=20)


def ask(client: openai.OpenAI, model: str = "acme/chat-1") -> str:
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi there"}])
    return reply.choices[0].message.content or ""


def wait_for_usage(user: User, count: int) -> None:
    # The gateway writes its ledger just after answering; give it a moment.
    deadline = time.monotonic() + 10
    while UsageRecord.objects.filter(user=user).count() < count:
        assert time.monotonic() < deadline, "the usage row was never written"
        time.sleep(0.05)


def test_a_key_from_the_profile_works_and_revoking_it_stops_the_very_next_call(
    live_server: LiveServer, catalogue: None, alice: User, alice_browser: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    secret = issue(alice_browser)
    client = sdk(live_server, secret)
    fake_upstream.queue(Reply(content="first answer"))
    assert ask(client) == "first answer"

    key = ApiKey.objects.get(user=alice)
    assert alice_browser.post(f"/accounts/profile/keys/{key.pk}/revoke/").status_code == 302
    with pytest.raises(openai.AuthenticationError) as refused:
        ask(client)
    assert refused.value.code == "invalid_api_key"
    assert len(fake_upstream.chat_requests()) == 1


def test_a_scoped_key_is_refused_other_models_with_403(
    live_server: LiveServer, catalogue: None, alice_browser: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    client = sdk(live_server, issue(alice_browser, allowed_models=["acme/chat-2"]))
    assert ask(client, "acme/chat-2")
    with pytest.raises(openai.PermissionDeniedError) as refused:
        ask(client, "acme/chat-1")
    assert "acme/chat-1" in refused.value.message and "acme/chat-2" in refused.value.message
    assert len(fake_upstream.chat_requests()) == 1


def test_an_expired_key_is_refused(
    live_server: LiveServer, catalogue: None, alice: User, alice_browser: httpx.Client
) -> None:
    day = timezone.localdate() + timedelta(days=1)
    client = sdk(live_server, issue(alice_browser, expires_on=day.isoformat()))
    assert ask(client)
    # Time passes: the expiry moment is now behind us. The change is written beside the server (as
    # a SQL console would), so it reaches the server's rights cache through PostgreSQL's NOTIFY.
    ApiKey.objects.filter(user=alice).update(expires_at=timezone.now() - timedelta(seconds=1))
    deadline = time.monotonic() + 10
    while True:
        try:
            ask(client)
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "the expired key was still served"
        time.sleep(0.05)


def test_a_deactivated_users_key_is_refused_at_once(
    live_server: LiveServer, catalogue: None, alice: User, alice_browser: httpx.Client, admin: User
) -> None:
    client = sdk(live_server, issue(alice_browser))
    assert ask(client)
    admin_browser = browser(live_server, admin)
    admin_browser.post("/admin/accounts/user/", data={"action": "deactivate", "_selected_action": [str(alice.pk)]})
    with pytest.raises(openai.AuthenticationError):
        ask(client)


def test_api_usage_shows_on_the_profile_as_the_ledger_has_it(
    live_server: LiveServer, catalogue: None, alice: User, alice_browser: httpx.Client
) -> None:
    client = sdk(live_server, issue(alice_browser))
    for _ in range(3):
        ask(client)
    wait_for_usage(alice, 3)
    ledger = UsageRecord.objects.filter(user=alice).aggregate(
        p=Sum("prompt_tokens"), c=Sum("completion_tokens"), cost=Sum("cost")
    )
    assert ledger["p"] and ledger["c"]
    page = alice_browser.get("/accounts/profile/").content.decode()
    api_row = page.split('data-period="recent" data-source="api"', 1)[1].split("</tr>", 1)[0]
    total = ledger["p"] + ledger["c"]
    assert f'<td class="num">3</td><td class="num">{ledger["p"]}</td><td class="num">{ledger["c"]}</td>' in api_row
    assert f'<td class="num">{total}</td><td class="num">{ledger["cost"]:.4f}</td>' in api_row
    data = alice_browser.get("/api/usage/daily/").json()
    assert [s["model"] for s in data["models"]] == ["acme/chat-1"]
    assert sum(data["models"][0]["tokens"]) == total
    assert data["totals"]["api"]["requests"] == 3 and data["totals"]["chat"]["requests"] == 0
