"""Routing by measured time to first byte: two deployments of one model on real loopback upstreams.

The primary deployment is the `gateway` fixture's provider (`fake_upstream`), a second one points at
the `backup` upstream. How long an upstream takes is the test's clock moving before its first byte
(`Reply(takes=...)`), so the gateway measures exactly that, whatever the machine's speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from catalogue.models import Deployment, LanguageModel, Provider
from core.clock import ManualClock
from gateway import health, latency
from gateway.auth import Caller
from gateway.chat_completions.serving import ChatServing
from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway.conftest import Gateway, wait_for_usage
from tests.gateway.test_health import store  # noqa: F401
from tests.gateway.test_routing import ask, stream
from tests.gateway.test_streaming import GOOD_CHUNK, _point_provider_at, chat_body, ledger, raw_upstream

PRIMARY = "Hello from the fake upstream."
BACKUP = "from the backup"


@pytest.fixture
def two(gateway: Gateway, backup: FakeUpstream, clock: ManualClock) -> Iterator[Gateway]:
    """The model routed by latency over two deployments of the same priority."""
    provider = Provider.objects.create(name="backup", base_url=backup.base_url, read_timeout=5)
    Deployment.objects.create(model=gateway.model, provider=provider, upstream_model="backup-small")
    gateway.model.routing = LanguageModel.Routing.LATENCY
    gateway.model.save()
    latency.forget_turns()
    yield gateway
    latency.forget_turns()


def _pace(fake_upstream: FakeUpstream, primary: float, backup: FakeUpstream, other: float) -> None:
    fake_upstream.default = Reply(content=PRIMARY, takes=primary)
    backup.default = Reply(content=BACKUP, takes=other)


def _deployments(model: LanguageModel) -> tuple[Deployment, Deployment]:
    primary = Deployment.objects.get(model=model, primary=True)
    return primary, Deployment.objects.get(model=model, primary=False)


def _averages(model: LanguageModel) -> dict[str, tuple[float, int]]:
    primary, other = _deployments(model)
    found = async_to_sync(health.latencies)([primary.pk, other.pk])  # as this worker's routing reads them
    names = {primary.pk: "primary", other.pk: "backup"}
    return {names[i]: (round(m.seconds, 6), m.count) for i, m in found.items()}


def test_each_deployment_is_measured_first_then_the_faster_one_takes_the_traffic(
    two: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream
) -> None:
    _pace(fake_upstream, 0.5, backup, 0.1)
    assert sorted(ask(two) for _ in range(2)) == sorted([PRIMARY, BACKUP]), "each unmeasured one is tried once"
    assert _averages(two.model) == {"primary": (0.5, 1), "backup": (0.1, 1)}
    assert [ask(two) for _ in range(10)] == [BACKUP] * 10
    assert _averages(two.model)["backup"] == (0.1, 11)


def test_a_stream_is_measured_to_its_first_event(
    two: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream
) -> None:
    _pace(fake_upstream, 0.25, backup, 0.75)
    assert sorted(stream(two) for _ in range(2)) == sorted([PRIMARY, BACKUP])
    assert _averages(two.model) == {"primary": (0.25, 1), "backup": (0.75, 1)}
    assert [stream(two) for _ in range(3)] == [PRIMARY] * 3


def _route_by_latency() -> int:
    model = LanguageModel.objects.get()
    model.routing = LanguageModel.Routing.LATENCY
    model.save()
    return Deployment.objects.get(model=model).pk


async def test_a_stream_that_began_with_keep_alives_is_measured_at_its_first_event(
    chat: Caller, clock: ManualClock
) -> None:
    deployment = await sync_to_async(_route_by_latency)()
    async with raw_upstream(0.5, GOOD_CHUNK, b"data: [DONE]\n\n") as url:
        await sync_to_async(_point_provider_at)(url)
        seen: list[Any] = []
        async for event in ChatServing(chat, chat_body(), stream=True).stream(0.1):
            if event is None and not seen:
                clock.advance(2.5)  # the upstream is silent: keep-alives go out, and time passes
            seen.append(event)
    assert seen[0] is None and any(e is not None and e["choices"] for e in seen)
    [found] = (await health.latencies([deployment])).values()
    assert (round(found.seconds, 6), found.count) == (2.5, 1)
    await ledger()


async def test_a_stream_that_began_with_keep_alives_counts_as_its_deployments_success(
    chat: Caller, clock: ManualClock
) -> None:
    deployment = await sync_to_async(lambda: Deployment.objects.get().pk)()  # routed by priority
    await health.failed(deployment, None)
    async with raw_upstream(0.5, GOOD_CHUNK, b"data: [DONE]\n\n") as url:
        await sync_to_async(_point_provider_at)(url)
        seen: list[Any] = []
        async for event in ChatServing(chat, chat_body(), stream=True).stream(0.1):
            if event is None and not seen:
                clock.advance(2.5)
            seen.append(event)
    assert seen[0] is None and any(e is not None and e["choices"] for e in seen)
    assert (await health.states([deployment]))[deployment].failures == 0, "the earlier failure is forgotten"
    assert await health.latencies([deployment]) == {}, "a model routed by priority is not measured"
    await ledger()


def test_a_deployment_that_becomes_slow_loses_the_traffic(
    two: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream
) -> None:
    _pace(fake_upstream, 0.5, backup, 0.1)
    [ask(two) for _ in range(4)]
    backup.default = Reply(content=BACKUP, takes=2.0)
    assert ask(two) == BACKUP  # measured slow now: 0.1 + 0.3 * (2.0 - 0.1)
    assert _averages(two.model)["backup"] == (pytest.approx(0.67), 4)
    assert [ask(two) for _ in range(3)] == [PRIMARY] * 3


def test_every_nth_choice_measures_the_least_recently_measured_again(
    two: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream
) -> None:
    _pace(fake_upstream, 0.5, backup, 0.1)
    [ask(two) for _ in range(2)]  # each measured once
    fake_upstream.default = Reply(content=PRIMARY, takes=0.05)  # the slow one got fast meanwhile
    answers = [ask(two) for _ in range(latency.EXPLORE_EVERY)]
    assert answers == [BACKUP] * (latency.EXPLORE_EVERY - 1) + [PRIMARY]
    assert _averages(two.model)["primary"] == (pytest.approx(0.5 + 0.3 * (0.05 - 0.5)), 2)
    answers = [ask(two) for _ in range(2 * latency.EXPLORE_EVERY)]
    assert answers.count(PRIMARY) == 2, "still slower on average: re-measured once every N choices"


def test_a_better_priority_wins_over_a_faster_deployment(
    two: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream
) -> None:
    _pace(fake_upstream, 0.9, backup, 0.01)
    other = _deployments(two.model)[1]
    other.priority = 1
    other.save()
    async_to_sync(health.succeeded)(other.pk, 0.01)
    assert [ask(two) for _ in range(5)] == [PRIMARY] * 5
    assert not backup.chat_requests()


async def _end(deployment_id: int) -> None:
    health.end(deployment_id)


def test_a_deployment_at_its_cap_is_skipped_however_fast(
    two: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream
) -> None:
    _pace(fake_upstream, 0.9, backup, 0.01)
    [ask(two) for _ in range(2)]
    other = _deployments(two.model)[1]
    other.max_concurrent = 1
    other.save()
    health.begin(other.pk)  # another request of this worker holds its one slot
    try:
        assert [ask(two) for _ in range(3)] == [PRIMARY] * 3
    finally:
        async_to_sync(_end)(other.pk)
    assert ask(two) == BACKUP


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
def test_the_fastest_failing_fails_over_and_its_failure_does_not_change_its_average(
    two: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream, streamed: bool
) -> None:
    _pace(fake_upstream, 0.5, backup, 0.1)
    [ask(two) for _ in range(2)]
    backup.queue(Reply(status=500, takes=9.0))
    assert (stream(two) if streamed else ask(two)) == PRIMARY
    rows = wait_for_usage(3)
    answered = rows[-1].deployment
    assert rows[-1].attempts == 2 and answered is not None and answered.provider.name == "fake"
    assert _averages(two.model) == {"primary": (0.5, 2), "backup": (0.1, 1)}
    assert ask(two) == BACKUP, "one failure is the circuit's business, not the average's"


def test_a_model_routed_by_priority_measures_nothing(
    two: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream
) -> None:
    two.model.routing = LanguageModel.Routing.PRIORITY
    two.model.save()
    _pace(fake_upstream, 0.5, backup, 0.1)
    assert sorted(ask(two) for _ in range(4)) == sorted([PRIMARY, BACKUP] * 2)
    assert _averages(two.model) == {}


# ---------------------------------------------------------------------------------------------
# Shared by the workers: each continues the average the others left, in Redis or the files folder.


class Worker:
    """Another worker process with the gateway's store (tests/gateway/latency_worker.py)."""

    def __init__(self, where: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.gateway.latency_worker", where],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._line() == "ready"

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._line()

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.mark.usefixtures("store")  # twice: with Redis, and without (each worker's file in this database's folder)
def test_the_averages_are_shared_by_the_workers(
    two: Gateway, fake_upstream: FakeUpstream, backup: FakeUpstream, clock: ManualClock, settings: Any
) -> None:
    _pace(fake_upstream, 0.5, backup, 0.1)
    [ask(two) for _ in range(2)]  # each measured for the first time: shared at once
    clock.advance(health.LATENCY_SHARE_SECONDS)  # without Redis, later averages are shared this often
    ask(two)
    primary, other = _deployments(two.model)
    worker = Worker(settings.REDIS_URL or str(health.shared_folder()))
    try:
        seen = json.loads(worker.ask(f"read {primary.pk},{other.pk}"))
        assert seen == {str(primary.pk): [0.5, 1], str(other.pk): [0.1, 2]}, "the other worker sees ours"
        # The other worker finds the fast one slow; this one continues that average and moves away.
        assert worker.ask(f"measure {other.pk} 3.1 {clock.time() + 1}") == "ok"
        assert _averages(two.model)["backup"] == (pytest.approx(0.1 + 0.3 * 3.0), 3)
        assert [ask(two) for _ in range(3)] == [PRIMARY] * 3
    finally:
        worker.stop()
