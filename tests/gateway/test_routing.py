"""One model, two deployments on real loopback upstreams scripted to fail: failover, cooldowns, recovery.

The primary deployment is the `gateway` fixture's provider (`fake_upstream`, priority 0); a backup
deployment of the same model points at a second fake upstream (priority 1). Cooldowns are moved
with the test's clock, never slept through.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from catalogue.models import Deployment, Provider
from core.clock import ManualClock
from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway.conftest import MODEL, Gateway, wait_for_usage
from tests.live_server import free_port

MESSAGES: Any = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def routed(gateway: Gateway, backup: FakeUpstream, clock: ManualClock) -> Gateway:
    provider = Provider.objects.create(name="backup", base_url=backup.base_url, read_timeout=5)
    Deployment.objects.create(model=gateway.model, provider=provider, upstream_model="backup-small", priority=1)
    return gateway


def ask(gateway: Gateway, **fields: Any) -> str:
    reply = gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES, **fields)
    return reply.choices[0].message.content or ""


def stream(gateway: Gateway) -> str:
    chunks = gateway.client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def point(provider: Provider, base_url: str) -> None:
    provider.base_url = base_url
    provider.save()


def test_a_refused_first_deployment_is_tried_once_then_skipped_and_comes_back_by_itself(
    routed: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream, clock: ManualClock
) -> None:
    dead_port = free_port()
    point(routed.provider, f"http://127.0.0.1:{dead_port}/v1")
    assert [ask(routed) for _ in range(4)] == ["from the backup"] * 4
    rows = wait_for_usage(4)
    assert [row.attempts for row in rows] == [2, 1, 1, 1], "tried once, then skipped while cooling down"
    assert {row.deployment.provider.name for row in rows} == {"backup"}
    assert len(backup.chat_requests()) == 4

    revived = FakeUpstream().start(port=dead_port)
    try:
        revived.default = Reply(content="primary again")
        clock.advance(5)  # the first cooldown is over: one real request may go (half-open)
        assert ask(routed) == "primary again"
        assert ask(routed) == "primary again"
        assert len(revived.chat_requests()) == 2
    finally:
        revived.stop()


def test_an_unreachable_deployment_is_probed_with_its_model_list_never_a_completion(
    routed: Gateway, backup: FakeUpstream, clock: ManualClock, settings: Any
) -> None:
    settings.ROUTING_PROBE_SECONDS = 1
    dead_port = free_port()
    point(routed.provider, f"http://127.0.0.1:{dead_port}/v1")
    assert ask(routed) == "from the backup"  # refused: it cools down at once (and a first probe fails)
    routed.app.run(_settle_probes())
    revived = FakeUpstream().start(port=dead_port)
    try:
        clock.advance(1)  # the next probe is due; the 5 s cooldown is not over
        assert ask(routed) == "from the backup"  # still cooling: skipped, its model list asked for instead
        routed.app.run(_settle_probes())
        assert [(r.method, r.path) for r in revived.requests] == [("GET", "/v1/models")]
        # The model list answered: the cooldown ended early, and the next real request goes there.
        assert ask(routed) == "Hello from the fake upstream."
        assert len(revived.chat_requests()) == 1
    finally:
        revived.stop()


def test_a_deployment_tripped_by_its_answers_waits_out_its_cooldown(
    routed: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream, clock: ManualClock
) -> None:
    fake_upstream.queue(Reply(status=500), Reply(status=500), Reply(status=500))
    for _ in range(3):  # three failures in a row trip it
        assert ask(routed) == "from the backup"
    clock.advance(4.9)
    assert ask(routed) == "from the backup"
    routed.app.run(_settle_probes())
    assert len(fake_upstream.requests) == 3, "no probe, no completion while it cools down"
    clock.advance(0.1)
    assert ask(routed) == "Hello from the fake upstream."  # half-open: a real request, which succeeds
    fake_upstream.queue(Reply(status=500))
    assert ask(routed) == "from the backup"  # closed again: one failure does not trip it
    assert ask(routed) == "Hello from the fake upstream."


async def _settle_probes() -> None:
    import asyncio

    from gateway import routing

    if routing._probes:
        await asyncio.wait(set(routing._probes), timeout=10)


@pytest.mark.parametrize(
    "failure",
    [
        Reply(status=500),
        Reply(status=503),
        Reply(status=502),
        Reply(status=429, retry_after="30"),
        Reply(status=408),
        Reply(status=409),
        Reply(drop=True),
        Reply(garbage=True),
        Reply(hang=True),
    ],
    ids=["500", "503", "502", "429", "408", "409", "dropped", "garbage", "hang"],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
def test_a_failure_before_the_first_byte_is_answered_by_the_other_deployment(
    routed: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream, failure: Reply, streamed: bool
) -> None:
    primary = Provider.objects.get(pk=routed.provider.pk)
    primary.read_timeout = 0.5  # the first-byte timeout a hang runs into
    primary.save()
    fake_upstream.queue(failure)
    assert (stream(routed) if streamed else ask(routed)) == "from the backup"
    assert len(fake_upstream.chat_requests()) == 1 and len(backup.chat_requests()) == 1
    (row,) = wait_for_usage(1)
    assert row.status == 200 and row.attempts == 2 and row.deployment.provider.name == "backup"
    assert json.loads(json.dumps(backup.last.body))["model"] == "backup-small"


def test_an_upstream_retry_after_keeps_its_deployment_aside_until_then(
    routed: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream, clock: ManualClock
) -> None:
    fake_upstream.queue(Reply(status=429, retry_after="30"))
    assert ask(routed) == "from the backup"
    clock.advance(29)
    assert ask(routed) == "from the backup"
    assert len(fake_upstream.chat_requests()) == 1
    clock.advance(1)
    assert ask(routed) == "Hello from the fake upstream."


def test_a_failure_after_the_first_byte_is_not_retried(
    routed: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(content="a b c d", fail_after_chunks=2, error_message="model crashed"))
    response = routed.http.post(
        "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES, "stream": True}, headers=routed.headers()
    )
    events = [block.removeprefix("data: ") for block in response.text.strip().split("\n\n")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["message"].endswith("model crashed")
    assert sum("error" in json.loads(e) for e in events[:-1]) == 1
    assert not backup.chat_requests()


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_a_request_the_upstream_refuses_is_answered_at_once_never_retried(
    routed: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream, status: int
) -> None:
    fake_upstream.queue(Reply(status=status, error_message="no such thing"))
    with pytest.raises(openai.APIStatusError) as caught:
        ask(routed)
    assert caught.value.status_code == status and "no such thing" in caught.value.message
    assert not backup.chat_requests()
    (row,) = wait_for_usage(1)
    assert row.attempts == 1 and row.status == status


def test_when_every_deployment_is_down_it_is_a_503_with_retry_after_and_the_sdk_raises(
    routed: Gateway, backup: FakeUpstream
) -> None:
    point(routed.provider, f"http://127.0.0.1:{free_port()}/v1")
    point(Provider.objects.get(name="backup"), f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(openai.InternalServerError) as caught:
        routed.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.status_code == 503
    error = caught.value.body
    assert isinstance(error, dict) and error["code"] == "upstream_unavailable"
    assert caught.value.response.headers["retry-after"] == "5"
    with pytest.raises(openai.APIStatusError) as again:  # both cool down: refused without a try
        routed.client().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    assert again.value.status_code == 503
    rows = wait_for_usage(2)
    assert [row.attempts for row in rows] == [2, 0]


def test_a_disabled_deployment_gets_nothing(routed: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream) -> None:
    primary = Deployment.objects.get(model=routed.model, primary=True)
    primary.enabled = False
    primary.save()
    assert ask(routed) == "from the backup"
    assert not fake_upstream.chat_requests()
