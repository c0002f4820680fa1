"""The single-process channel layer sweeps expired messages at most once a second, and still sweeps."""

from __future__ import annotations

import pytest

from chatsite.layers import SweptInMemoryChannelLayer
from core.clock import ManualClock


@pytest.fixture
def layer() -> SweptInMemoryChannelLayer:
    # Messages that expire at once: whatever a sweep finds in a queue is expired.
    return SweptInMemoryChannelLayer(expiry=0)


async def test_it_delivers_to_a_group_as_channels_layer_does(layer: SweptInMemoryChannelLayer) -> None:
    layer.expiry = 60
    await layer.group_add("room", "socket-1")
    await layer.group_send("room", {"type": "chat.delta", "text": "hi"})
    assert await layer.receive("socket-1") == {"type": "chat.delta", "text": "hi"}


async def test_a_full_member_misses_a_group_message_and_the_others_still_get_it(
    layer: SweptInMemoryChannelLayer,
) -> None:
    layer.expiry, layer.capacity = 60, 1
    for channel in ("socket-1", "socket-2", "socket-3"):
        await layer.group_add("room", channel)
    await layer.send("socket-2", {"type": "chat.delta", "text": "earlier"})  # socket-2 is full

    await layer.group_send("room", {"type": "chat.delta", "text": "hi"})

    assert await layer.receive("socket-1") == {"type": "chat.delta", "text": "hi"}
    assert await layer.receive("socket-2") == {"type": "chat.delta", "text": "earlier"}
    assert await layer.receive("socket-3") == {"type": "chat.delta", "text": "hi"}
    assert "socket-2" not in layer.channels  # nothing more came for it: its queue is gone


async def test_each_member_gets_its_own_copy_of_a_group_message(layer: SweptInMemoryChannelLayer) -> None:
    layer.expiry = 60
    await layer.group_add("room", "socket-1")
    await layer.group_add("room", "socket-2")
    await layer.group_send("room", {"type": "chat.message", "message": {"id": 1}})
    first = await layer.receive("socket-1")
    first["message"]["id"] = 2
    assert await layer.receive("socket-2") == {"type": "chat.message", "message": {"id": 1}}


async def test_it_sweeps_expired_messages_at_most_once_a_second(
    layer: SweptInMemoryChannelLayer, clock: ManualClock
) -> None:
    await layer.group_send("nobody", {"type": "x"})  # the first sweep
    await layer.group_add("room", "gone-socket")
    await layer.send("gone-socket", {"type": "chat.delta"})

    clock.advance(0.5)
    await layer.group_send("nobody", {"type": "x"})
    assert "gone-socket" in layer.channels  # within the second: not swept yet

    clock.advance(0.6)
    await layer.group_send("nobody", {"type": "x"})
    assert "gone-socket" not in layer.channels  # its expired message swept, and the channel with it
    assert "gone-socket" not in layer.groups.get("room", {})
