"""The single-process channel layer sweeps expired messages at most once a second, and still sweeps."""

from __future__ import annotations

import pytest

from chatsite.clock import ManualClock
from chatsite.layers import SweptInMemoryChannelLayer


@pytest.fixture
def layer() -> SweptInMemoryChannelLayer:
    # Messages that expire at once: whatever a sweep finds in a queue is expired.
    return SweptInMemoryChannelLayer(expiry=0)


async def test_it_delivers_to_a_group_as_channels_layer_does(layer: SweptInMemoryChannelLayer) -> None:
    layer.expiry = 60
    await layer.group_add("room", "socket-1")
    await layer.group_send("room", {"type": "chat.delta", "text": "hi"})
    assert await layer.receive("socket-1") == {"type": "chat.delta", "text": "hi"}


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
