"""The conversation list: keyset pages, pinned first, search, temporary chats left out and ended."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from accounts.models import User
from conversations import listing, temporary
from conversations.models import Conversation, Message

API = "/api/conversations/"


def many(owner: User, count: int) -> list[Conversation]:
    start = timezone.now() - timedelta(days=30)
    return Conversation.objects.bulk_create(
        Conversation(owner=owner, title=f"Chat {i}", updated_at=start + timedelta(minutes=i // 2)) for i in range(count)
    )


def test_it_walks_the_whole_list_once_in_order_by_keyset_pages(as_alice: httpx.Client, alice: User) -> None:
    made = many(alice, 25)  # pairs share an updated_at: the id breaks the tie
    Conversation.objects.filter(pk__in=[made[3].pk, made[10].pk]).update(pinned=True)
    seen: list[int] = []
    answer = as_alice.get(API, params={"cursor": "", "page_size": 7}).json()
    while True:
        seen += [c["id"] for c in answer["results"]]
        if not answer["next"]:
            break
        answer = as_alice.get(answer["next"]).json()
    expected = list(
        Conversation.objects.filter(owner=alice).order_by("-pinned", "-updated_at", "-id").values_list("pk", flat=True)
    )
    assert seen == expected and len(set(seen)) == 25
    assert seen[:2] == [made[10].pk, made[3].pk]


def test_it_answers_a_forged_cursor_with_a_clear_400(as_alice: httpx.Client) -> None:
    for cursor in ["zzz", "W10", "WyJ4IiwgMSwgMl0", "!!!"]:
        answer = as_alice.get(API, params={"cursor": cursor})
        assert answer.status_code == 400, cursor
        assert answer.json()["error"]["param"] == "cursor"


def test_it_finds_titles_and_messages_with_the_pinned_first(as_alice: httpx.Client, alice: User) -> None:
    by_title = Conversation.objects.create(owner=alice, title="Lisbon trip")
    by_message = Conversation.objects.create(owner=alice, title="Other", pinned=True)
    Message.objects.create(conversation=by_message, role="user", content="flights to lisbon")
    Conversation.objects.create(owner=alice, title="Unrelated")
    found = as_alice.get(API, params={"cursor": "", "q": "lisbon"}).json()["results"]
    assert [c["id"] for c in found] == [by_message.pk, by_title.pk]


def test_it_never_lists_temporary_chats(as_alice: httpx.Client, alice: User) -> None:
    started = as_alice.post(API, json={"temporary": True}).json()
    assert started["temporary"] is True
    assert as_alice.get(API).json()["results"] == []
    assert as_alice.get(API, params={"cursor": ""}).json()["results"] == []
    assert as_alice.get(f"{API}{started['id']}/").status_code == 200  # yet it is there to chat in
    changed = as_alice.patch(f"{API}{started['id']}/", json={"temporary": False})
    assert changed.status_code == 400 and changed.json()["error"]["param"] == "temporary"


def test_it_ends_the_users_temporary_chats_but_the_one_a_loaded_page_shows(
    as_alice: httpx.Client, as_bob: httpx.Client, alice: User, bob: User
) -> None:
    left, shown = (Conversation.objects.create(owner=alice, temporary=True) for _ in range(2))
    bobs = Conversation.objects.create(owner=bob, temporary=True)
    kept = Conversation.objects.create(owner=alice)
    assert as_bob.post(f"{API}end-temporary/", json={"keep": bobs.pk}).json() == {"ended": 0}  # not alice's
    answer = as_alice.post(f"{API}end-temporary/", json={"keep": shown.pk})
    assert answer.status_code == 200 and answer.json() == {"ended": 1}
    assert not Conversation.objects.filter(pk=left.pk).exists()
    assert set(Conversation.objects.values_list("pk", flat=True)) == {shown.pk, bobs.pk, kept.pk}
    assert as_alice.post(f"{API}end-temporary/", json={}).json() == {"ended": 1}  # a new chat's page keeps none
    assert not Conversation.objects.filter(pk=shown.pk).exists()


@pytest.mark.parametrize("keep", ["three", 0, True, [1]])
def test_it_refuses_a_keep_that_is_no_conversation_id(as_alice: httpx.Client, alice: User, keep: object) -> None:
    chat = Conversation.objects.create(owner=alice, temporary=True)
    answer = as_alice.post(f"{API}end-temporary/", json={"keep": keep})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "keep"
    assert Conversation.objects.filter(pk=chat.pk).exists()


def test_it_waits_to_end_a_temporary_chat_while_a_reply_is_written_in_it(alice: User) -> None:
    conversation = Conversation.objects.create(owner=alice, temporary=True)
    Message.objects.create(conversation=conversation, role="assistant", status="streaming")
    assert temporary.end_for(alice) == 0
    Message.objects.filter(conversation=conversation).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert temporary.end_for(alice) == 1  # its worker died: nothing is being written any more


def test_it_sweeps_idle_temporary_chats_of_every_user(alice: User, bob: User, clock) -> None:  # type: ignore[no-untyped-def]
    idle = Conversation.objects.create(owner=alice, temporary=True)
    fresh = Conversation.objects.create(owner=bob, temporary=True)
    kept = Conversation.objects.create(owner=bob)
    Conversation.objects.filter(pk__in=[idle.pk, kept.pk]).update(updated_at=timezone.now() - timedelta(minutes=30))
    assert temporary.sweep() == 0
    clock.advance(temporary.IDLE.total_seconds() - 29 * 60)
    assert temporary.sweep() == 1
    assert set(Conversation.objects.values_list("pk", flat=True)) == {fresh.pk, kept.pk}


def test_it_reads_a_bounded_number_of_rows_for_a_page(alice: User, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    many(alice, 120)
    with django_assert_max_num_queries(1):
        rows, cursor = listing.page(listing.listed(alice), size=50)
    assert len(rows) == 50 and cursor
    rows, _ = listing.page(listing.listed(alice), cursor, size=50)
    assert len(rows) == 50
