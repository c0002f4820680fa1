"""Share links: a snapshot at share time, open logged out, listed and revoked by their owner alone."""

from __future__ import annotations

import hashlib
import json
import re

import httpx
import pytest

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from conversations import branches
from conversations.models import Conversation, Share
from tests.inprocess import InProcessApp

API = "/api/conversations/"
XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


@pytest.fixture
def model(transactional_db: None) -> LanguageModel:
    provider = Provider.objects.create(name="up", base_url="http://127.0.0.1:9/v1")
    return LanguageModel.objects.create(public_id="team/chat", provider=provider, upstream_model="m")


@pytest.fixture
def alices(alice: User, model: LanguageModel) -> Conversation:
    conversation = Conversation.objects.create(
        owner=alice, title="Trip to Lisbon", model=model, system_prompt="SECRET-PROMPT"
    )
    branches.append(conversation, role="user", content="Where do I eat pastéis de nata?")
    branches.append(conversation, role="assistant", content="In Belém.", model=model, prompt_tokens=7)
    return conversation


def share(client: httpx.Client, conversation: Conversation) -> dict:  # type: ignore[type-arg]
    answer = client.post(f"{API}{conversation.pk}/share/")
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def shown(page: httpx.Response) -> str:
    """The snapshot the page carries for its script, as text."""
    match = re.search(r'<script id="shared-snapshot" type="application/json">(.*?)</script>', page.text, re.S)
    assert match, page.text
    return json.dumps(json.loads(match.group(1)), ensure_ascii=False)


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def test_a_share_link_opens_logged_out_and_shows_the_words_only(
    app: InProcessApp, as_alice: httpx.Client, alices: Conversation
) -> None:
    made = share(as_alice, alices)
    assert made["title"] == "Trip to Lisbon" and made["conversation"] == alices.pk
    page = app.client().get(path_of(made["link"]))
    assert page.status_code == 200
    assert "pastéis de nata" in shown(page) and "In Belém." in shown(page)
    assert "SECRET-PROMPT" not in page.text  # the system prompt is not the reader's
    assert '<meta name="robots" content="noindex, nofollow">' in page.text
    assert page.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "no-cache" in page.headers["Cache-Control"] or "max-age=0" in page.headers["Cache-Control"]
    snapshot = Share.objects.get().snapshot
    assert set(snapshot) == {"title", "created_at", "messages"}
    assert set(snapshot["messages"][1]) == {"role", "content", "model", "created_at", "attachments", "sources"}


def test_the_token_is_stored_only_as_its_hash(as_alice: httpx.Client, alices: Conversation) -> None:
    made = share(as_alice, alices)
    token = made["link"].rstrip("/").rsplit("/", 1)[1]
    assert len(token) >= 43  # 32 random bytes
    stored = Share.objects.get()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(Share.objects.values().get())
    # the list never shows the link again
    listed = as_alice.get("/api/shares/").json()["results"]
    assert [s["id"] for s in listed] == [stored.pk] and "link" not in listed[0]


def test_later_messages_do_not_leak_into_a_share(
    app: InProcessApp, as_alice: httpx.Client, alices: Conversation
) -> None:
    made = share(as_alice, alices)
    branches.append(alices, role="user", content="LATER-AND-PRIVATE")
    alices.title = "Renamed later"
    alices.save()
    page = app.client().get(path_of(made["link"]))
    assert "In Belém." in shown(page)
    assert "LATER-AND-PRIVATE" not in page.text and "Renamed later" not in page.text


def test_a_wrong_or_revoked_link_is_a_404(app: InProcessApp, as_alice: httpx.Client, alices: Conversation) -> None:
    made = share(as_alice, alices)
    anonymous = app.client()
    assert anonymous.get("/s/" + "A" * 43 + "/").status_code == 404
    assert anonymous.get("/s/" + "A" * 500 + "/").status_code == 404
    assert as_alice.delete(f"/api/shares/{Share.objects.get().pk}/").status_code == 204
    assert anonymous.get(path_of(made["link"])).status_code == 404


def test_a_deactivated_owners_links_stop_opening(
    app: InProcessApp, as_alice: httpx.Client, alice: User, alices: Conversation
) -> None:
    made = share(as_alice, alices)
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert app.client().get(path_of(made["link"])).status_code == 404


def test_the_profile_lists_shares_and_revokes_one(
    app: InProcessApp, as_alice: httpx.Client, alices: Conversation
) -> None:
    made = share(as_alice, alices)
    profile = as_alice.get("/accounts/profile/")
    assert "Shared conversations" in profile.text and "Trip to Lisbon" in profile.text
    shared = Share.objects.get()
    revoked = as_alice.post(f"/shares/{shared.pk}/revoke/")
    assert revoked.status_code == 302 and revoked.headers["location"] == "/accounts/profile/"
    assert not Share.objects.exists()
    assert app.client().get(path_of(made["link"])).status_code == 404


def test_another_user_cannot_share_list_or_revoke_alices_links(
    as_alice: httpx.Client, as_bob: httpx.Client, alices: Conversation
) -> None:
    share(as_alice, alices)
    shared = Share.objects.get()
    assert as_bob.post(f"{API}{alices.pk}/share/").status_code == 404
    assert as_bob.get("/api/shares/").json()["results"] == []
    assert as_bob.delete(f"/api/shares/{shared.pk}/").status_code == 404
    assert as_bob.post(f"/shares/{shared.pk}/revoke/").status_code == 404
    assert "Trip to Lisbon" not in as_bob.get("/accounts/profile/").text
    assert Share.objects.filter(pk=shared.pk).exists()


def test_revoking_needs_a_login_and_a_post(app: InProcessApp, as_alice: httpx.Client, alices: Conversation) -> None:
    share(as_alice, alices)
    shared = Share.objects.get()
    assert app.client().post(f"/shares/{shared.pk}/revoke/").status_code in (302, 403)
    assert as_alice.get(f"/shares/{shared.pk}/revoke/").status_code == 405
    assert Share.objects.exists()


def test_deleting_the_conversation_deletes_its_shares(
    app: InProcessApp, as_alice: httpx.Client, alices: Conversation
) -> None:
    made = share(as_alice, alices)
    assert as_alice.delete(f"{API}{alices.pk}/").status_code == 204
    assert not Share.objects.exists()
    assert app.client().get(path_of(made["link"])).status_code == 404


def test_an_empty_or_temporary_conversation_is_not_shared(as_alice: httpx.Client, alice: User) -> None:
    empty = Conversation.objects.create(owner=alice)
    answer = as_alice.post(f"{API}{empty.pk}/share/")
    assert answer.status_code == 400 and "nothing to share" in answer.json()["error"]["message"]
    temporary = Conversation.objects.create(owner=alice, temporary=True)
    branches.append(temporary, role="user", content="hi")
    answer = as_alice.post(f"{API}{temporary.pk}/share/")
    assert answer.status_code == 400 and "temporary" in answer.json()["error"]["message"]
    assert not Share.objects.exists()


def test_a_hostile_snapshot_is_data_not_markup(app: InProcessApp, as_alice: httpx.Client, alice: User) -> None:
    conversation = Conversation.objects.create(owner=alice, title=XSS)
    branches.append(conversation, role="user", content=XSS + "</script><script>alert(3)</script>")
    made = share(as_alice, conversation)
    page = app.client().get(path_of(made["link"])).text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "\\u003Cscript\\u003E" in page  # the JSON data block escapes it; the browser test runs it
