"""A reply streaming while Redis loses its data (restarted without persistence) reaches its open sockets.

Redis forgets every socket's group then; each worker notices (conversations.rejoin) and its sockets and
replies join again, without the page being reloaded or anything being sent on the socket.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from accounts.models import User
from catalogue.models import LanguageModel
from conversations.models import Conversation
from tests.fake_upstream import FakeUpstream, Reply
from tests.scaleout.conftest import Cluster
from tests.scaleout.test_two_workers import WORDS, _finished, _frames, _session_cookie, _socket, model  # noqa: F401

pytestmark = pytest.mark.timeout(120)


def _listed(frame: dict[str, Any]) -> list[dict[str, Any]]:
    if frame["type"] == "messages":
        return list(frame["messages"])
    return [frame["message"]] if frame["type"] == "message" else []


def _reply_ended(frame: dict[str, Any]) -> bool:
    """The reply's end: its own frame, or (the reply ended while the socket was out of its group) the
    conversation sent again in full, as a socket gets it on connect."""
    return any(m["role"] == "assistant" and m["status"] != "streaming" for m in _listed(frame))


@pytest.mark.parametrize("socket_on", ["a", "b"])
def test_a_reply_streaming_across_redis_losing_its_data_reaches_the_open_socket(
    shared: Cluster,
    model: LanguageModel,  # noqa: F811
    alice: User,
    fake_upstream: FakeUpstream,
    socket_on: str,
) -> None:
    conversation = Conversation.objects.create(owner=alice, model=model)
    held = Reply(content=WORDS, chunks=30, hold_after_chunks=5)
    fake_upstream.queue(held)
    cookie = _session_cookie(alice)

    with (
        _socket(shared.a, conversation, cookie) as sender,
        _socket(getattr(shared, socket_on), conversation, cookie) as watcher,
    ):
        _frames(sender, lambda f: f["type"] == "messages")
        _frames(watcher, lambda f: f["type"] == "messages")
        sender.send(json.dumps({"type": "send", "content": "Count for me"}))
        seen = _frames(watcher, lambda f: f["type"] == "delta")
        shared.redis.flush()  # what a Redis restarted without persistence knows: nothing, the groups included
        held.released.set()
        seen += _frames(watcher, _reply_ended, timeout=60)

    assert _reply_ended(seen[-1])
    [reply] = [m for m in _listed(seen[-1]) if m["role"] == "assistant"]
    assert (reply["status"], reply["content"]) == ("complete", WORDS)
