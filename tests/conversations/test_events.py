"""An action's events go out once committed, in order, after it returns, without its database thread waiting."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from django.db import transaction

from conversations import events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(30)]


async def _joined(group: str) -> str:
    channel = await events.layer().new_channel()
    await events.layer().group_add(group, channel)
    return channel


async def _received(channel: str, count: int) -> list[dict[str, Any]]:
    return [await asyncio.wait_for(events.layer().receive(channel), 10) for _ in range(count)]


async def test_an_actions_events_arrive_in_order_once_it_returns() -> None:
    channel = await _joined("chat.conversation.1")

    def action() -> str:
        with transaction.atomic():
            for index in range(5):
                events.publish("chat.conversation.1", {"type": "chat.delta", "index": index})
        return "done"

    assert await events.run(action) == "done"
    assert [e["index"] for e in await _received(channel, 5)] == [0, 1, 2, 3, 4]


async def test_nothing_is_announced_for_a_change_rolled_back_and_what_committed_before_a_failure_is() -> None:
    channel = await _joined("chat.conversation.2")

    def action() -> None:
        events.publish("chat.conversation.2", {"type": "chat.delta", "n": "committed"})  # no transaction: at once
        with transaction.atomic():
            events.publish("chat.conversation.2", {"type": "chat.delta", "n": "rolled back"})
            raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await events.run(action)
    assert [e["n"] for e in await _received(channel, 1)] == ["committed"]
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(events.layer().receive(channel), 0.2)


async def test_the_database_thread_never_waits_for_the_event_loop() -> None:
    channel = await _joined("chat.conversation.3")
    started, held, finished = threading.Event(), threading.Event(), threading.Event()

    def action() -> None:
        started.set()
        held.wait(5)
        events.publish("chat.conversation.3", {"type": "chat.delta", "n": 1})
        finished.set()

    pending = asyncio.ensure_future(events.run(action))
    assert await asyncio.to_thread(started.wait, 10)
    # The loop is held here, as a loop busy with hundreds of streams is: an action that waited
    # for it to send its events could not finish meanwhile.
    held.set()
    assert finished.wait(5), "the action waited for the event loop"
    await pending
    assert [e["n"] for e in await _received(channel, 1)] == [1]


async def test_a_caller_that_goes_away_still_gets_its_action_done_and_announced() -> None:
    channel = await _joined("chat.conversation.4")
    release = threading.Event()

    def action() -> None:
        release.wait(10)
        events.publish("chat.conversation.4", {"type": "chat.delta", "n": "after"})

    caller = asyncio.ensure_future(events.run(action))
    await asyncio.sleep(0.05)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    release.set()
    assert [e["n"] for e in await _received(channel, 1)] == ["after"]
