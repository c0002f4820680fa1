"""Whatever a client sends, the chat socket answers with frames of its protocol and stays open:
never a 1011 close, never a server error in the log (Hypothesis throws arbitrary JSON and text)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from conversations.frames import KINDS
from conversations.models import Conversation
from core.clock import ManualClock
from tests.conversations.conftest import Connect
from tests.fake_upstream import FakeUpstream, Reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

SERVER_FRAMES = {"messages", "message", "delta", "reasoning", "snapshot", "removed", "conversation", "error", "pong"}

# Text as a hostile client may send it: any code point, NUL and lone surrogates included.
hostile_text = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(["\x00", "\ud800", "\udfff"])), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
frame_like = st.fixed_dictionaries(
    {"type": st.sampled_from([*KINDS, "nope", ""])},
    optional={"content": json_values, "id": json_values | st.integers(min_value=-(2**70), max_value=2**70)},
)
frames = st.one_of(
    frame_like.map(json.dumps),
    json_values.map(json.dumps),
    hostile_text,
    st.just('{"type": "edit", "id": 1e400, "content": "x"}'),
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sent=st.lists(frames, min_size=1, max_size=6))
async def test_any_frames_get_protocol_frames_back_and_the_socket_stays_open(
    alice: User,
    conversation: Conversation,
    connect: Connect,
    fake_upstream: FakeUpstream,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    sent: list[str],
) -> None:
    fake_upstream.default = Reply(content="ok")
    socket = await connect(alice, conversation.pk)
    try:
        first = await socket.receive_json_from(timeout=10)
        assert first["type"] == "messages"
        for text in sent:
            await socket.send_input({"type": "websocket.receive", "text": text})  # "" too
        clock.advance(3600)  # the frame limit's bucket is full again: the ping below is answered
        await socket.send_to(text_data='{"type": "ping"}')
        while True:
            output: dict[str, Any] = await socket.receive_output(timeout=10)
            assert output["type"] == "websocket.send", f"the socket closed: {output}"
            frame = json.loads(output["text"])
            assert frame["type"] in SERVER_FRAMES
            if frame["type"] == "pong":
                break
    finally:
        await socket.disconnect()
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
