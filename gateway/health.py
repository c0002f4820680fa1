"""Each deployment's health: a circuit breaker shared by every worker, and requests in flight.

    states = await health.states(ids)          # one round trip: which deployments may be tried now
    await health.failed(id, fault)             # after a retryable failure of an attempt
    await health.succeeded(id)                 # after an attempt's first byte (or answer)
    await health.succeeded(id, took)           # ... which took `took` s (models routed by latency measure)
    states, averages = await health.observed(ids)   # the circuits and the averages, one round trip

A deployment is *closed* (healthy) until `ROUTING_FAILURES_TO_TRIP` consecutive failures, or one
failure that says it is unreachable (connection refused, DNS), trip it: it *cools down* for
`ROUTING_COOLDOWN_SECONDS`, doubling on each trip that follows without a success in between, up to
`ROUTING_COOLDOWN_MAX_SECONDS`. After the cooldown it is *half-open*: one real request may go
(claimed atomically, so only one worker sends it); its success closes the circuit, its failure trips
it again. An upstream's `Retry-After` keeps its deployment aside until then, whatever the circuit says.

No paid probes: recovery is seen through real traffic (half-open) or, while a deployment that could
not be reached cools down, through `GET {base_url}/models` at most every `ROUTING_PROBE_SECONDS`
(claimed the same way): a model list that answers ends the cooldown early (half-open: the next real
request decides). A deployment tripped by its answers (5xx, timeouts) waits out its cooldown: its
model list answering says nothing about its completions.

State lives in Redis when `REDIS_URL` is set (every worker sees the same) and in this process
otherwise, each process then also writing its states to a file of its own under VAR_DIR/health, so
`shared_states` (what `models health`, the admin and /metrics show) sees every worker's, as the
Redis store lets it. Time is `core.clock`'s, so tests move cooldowns by moving the clock.
Requests in flight are counted per process (for "fewest in flight" and concurrency caps).

Beside each circuit the stores keep the deployment's time to first byte, a moving average
(gateway.latency) that every worker continues: in Redis one hash per deployment, updated atomically;
without Redis each process folds a measurement into the newest average any live worker wrote to the
folder, and routing reads the newest of them (files are re-read only when they changed). A file is
rewritten at most every `LATENCY_SHARE_SECONDS` for averages alone (a rename costs about a millisecond
on some filesystems, too much for every answer), at once for a deployment's first measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import weakref
from collections.abc import Iterator
from dataclasses import astuple
from pathlib import Path
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection

from catalogue.models import Deployment
from core.clock import clock
from gateway.circuit import HEALTHY as HEALTHY
from gateway.circuit import State as State
from gateway.circuit import after_failure
from gateway.errors import UpstreamFault
from gateway.health_redis import RedisStore
from gateway.latency import Latency, folded

log = logging.getLogger(__name__)

LATENCY_SHARE_SECONDS = 1.0  # without Redis, how often a worker's newer averages reach the others at most


# ---------------------------------------------------------------------------------------------
# Stores


class MemoryStore:
    def __init__(self, folder: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._states: dict[int, State] = {}
        self._claims: dict[str, float] = {}
        self._latency: dict[int, Latency] = {}
        self._latency_shared_at = float("-inf")
        self._folder = folder
        self._file = folder / f"{os.getpid()}.json" if folder is not None else None

    def _publish(self) -> None:
        """This process's states, for other processes to read (`shared_states`); under the lock."""
        if self._file is None:
            return
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            part = self._file.with_suffix(".part")
            states = {str(i): astuple(s) for i, s in self._states.items()}
            latency = {str(i): astuple(m) for i, m in self._latency.items()}
            part.write_text(json.dumps({"states": states, "latency": latency}))
            part.replace(self._file)
        except OSError:
            log.warning("could not share deployment health through %s", self._file, exc_info=True)

    async def states(self, ids: list[int]) -> dict[int, State]:
        with self._lock:
            return {i: self._states.get(i, HEALTHY) for i in ids}

    async def failed(self, deployment_id: int, fault: UpstreamFault | None) -> State:
        with self._lock:
            state = after_failure(self._states.get(deployment_id, HEALTHY), fault, clock().time())
            self._states[deployment_id] = state
            self._publish()
            return state

    async def succeeded(self, deployment_id: int, took: float | None = None) -> None:
        with self._lock:
            closed = self._close(deployment_id)
            measured = took is not None and self._measure(deployment_id, took)
            if closed or measured:
                self._publish()

    def _close(self, deployment_id: int) -> bool:
        """A success closes the circuit (a Retry-After in force stays); under the lock. True: it changed."""
        state = self._states.pop(deployment_id, None)
        if state is None:
            return False
        if state.retry_after_until > clock().time():
            self._states[deployment_id] = State(retry_after_until=state.retry_after_until)
        return True

    def _measure(self, deployment_id: int, took: float) -> bool:
        """Fold `took` into the newest average; under the lock. True: time to share it."""
        now = clock().time()
        previous = self._newest([deployment_id]).get(deployment_id)
        self._latency[deployment_id] = folded(previous, took, now)
        if previous is not None and now - self._latency_shared_at < LATENCY_SHARE_SECONDS:
            return False
        self._latency_shared_at = now
        return True

    async def end_cooldown(self, deployment_id: int) -> None:
        with self._lock:
            state = self._states.get(deployment_id)
            if state is not None:
                self._states[deployment_id] = State(state.failures, state.trips, 0.0, state.retry_after_until)
                self._publish()

    async def claim(self, name: str, seconds: float) -> bool:
        now = clock().time()
        with self._lock:
            if self._claims.get(name, 0.0) > now:
                return False
            self._claims[name] = now + seconds
            return True

    def _newest(self, ids: list[int]) -> dict[int, Latency]:
        """This process's averages, or another live worker's where it wrote a newer one; under the lock."""
        others = _files_latencies(self._folder, skip=self._file) if self._folder is not None else {}
        found = {}
        for i in ids:
            mine, theirs = self._latency.get(i), others.get(i)
            newest = mine.later(theirs) if mine is not None else theirs
            if newest is not None:
                found[i] = newest
        return found

    async def latencies(self, ids: list[int]) -> dict[int, Latency]:
        with self._lock:
            return self._newest(ids)

    async def observed(self, ids: list[int]) -> tuple[dict[int, State], dict[int, Latency]]:
        with self._lock:
            return {i: self._states.get(i, HEALTHY) for i in ids}, self._newest(ids)


Store = MemoryStore | RedisStore
_stores: dict[str | None, Store] = {}


def store() -> Store:
    url: str | None = getattr(settings, "REDIS_URL", None)
    found = _stores.get(url)
    if found is None:
        found = _stores[url] = RedisStore(url) if url else MemoryStore(shared_folder())
    return found


def shared_folder() -> Path:
    """Where each process without Redis leaves its states: one folder per database, as deployment ids are."""
    return Path(settings.HEALTH_DIR) / str(connection.settings_dict["NAME"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _worst(a: State, b: State) -> State:
    return max(a, b, key=lambda s: (s.available_at(), s.trips, s.failures))


# Each worker's file as last read, with what told it apart (inode, mtime, size): read again once replaced.
_read: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def _files(folder: Path, skip: Path | None = None) -> Iterator[dict[str, Any]]:
    """What each live worker of this machine wrote to `folder` (`skip`: this process's own file)."""
    for path in folder.glob("*.json") if folder.is_dir() else ():
        if path == skip or not path.stem.isdigit() or not _alive(int(path.stem)):
            continue
        try:
            stat = path.stat()
            seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            entry = _read.get(path)
            if entry is None or entry[0] != seen:
                entry = _read[path] = (seen, json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # gone or replaced meanwhile
        if isinstance(entry[1], dict):
            yield entry[1]


def _files_states(folder: Path) -> dict[int, State]:
    found: dict[int, State] = {}
    for written in _files(folder):
        for key, values in written.get("states", {}).items():
            state = State(*values)
            found[int(key)] = _worst(found.get(int(key), HEALTHY), state)
    return found


def _files_latencies(folder: Path, skip: Path | None = None) -> dict[int, Latency]:
    found: dict[int, Latency] = {}
    for written in _files(folder, skip):
        for key, values in written.get("latency", {}).items():
            found[int(key)] = Latency(*values).later(found.get(int(key)))
    return found


def shared_states(ids: list[int]) -> dict[int, State]:
    """Each deployment's state as the routers of every worker see it (synchronous: reports, not requests).

    Redis when `REDIS_URL` is set; otherwise the worst a live worker of this machine holds.
    """
    if getattr(settings, "REDIS_URL", None):
        return async_to_sync(states)(ids) if ids else {}
    found = _files_states(shared_folder())
    return {i: found.get(i, HEALTHY) for i in ids}


def shared_latencies(ids: list[int]) -> dict[int, Latency]:
    """Each measured deployment's average time to first byte as the routers see it (reports, not requests)."""
    if getattr(settings, "REDIS_URL", None):
        return async_to_sync(latencies)(ids) if ids else {}
    found = _files_latencies(shared_folder())
    return {i: found[i] for i in ids if i in found}


def forget_local_state() -> None:
    """Drop this process's health state, averages and in-flight counts (tests start clean)."""
    for found in _stores.values():
        if isinstance(found, MemoryStore) and found._file is not None:
            found._file.unlink(missing_ok=True)
    _stores.clear()
    _in_flight.clear()
    _read.clear()


# ---------------------------------------------------------------------------------------------
# What routing calls; a store that fails never fails a request (health is then "all healthy").


async def states(ids: list[int]) -> dict[int, State]:
    try:
        return await store().states(ids)
    except Exception:
        log.warning("deployment health unavailable; treating every deployment as healthy", exc_info=True)
        return {i: HEALTHY for i in ids}


async def failed(deployment_id: int, fault: UpstreamFault | None) -> State | None:
    try:
        state = await store().failed(deployment_id, fault)
    except Exception:
        log.warning("could not record a deployment's failure", exc_info=True)
        return None
    if state.trips and state.failures == 0 and state.cooling_until > clock().time():
        log.warning("deployment %s cools down for %.0fs", deployment_id, state.cooling_until - clock().time())
    return state


async def succeeded(deployment_id: int, took: float | None = None) -> None:
    """An attempt's first byte (or answer) came, `took` seconds after it went: measured when given."""
    try:
        await store().succeeded(deployment_id, took)
    except Exception:
        log.warning("could not record a deployment's success", exc_info=True)


async def observed(ids: list[int]) -> tuple[dict[int, State], dict[int, Latency]]:
    """The circuits (as `states`) and the averages (as `latencies`) in one round trip."""
    try:
        return await store().observed(ids)
    except Exception:
        log.warning("deployment health unavailable; treating every deployment as healthy", exc_info=True)
        return {i: HEALTHY for i in ids}, {}


async def claim(name: str, seconds: float) -> bool:
    """True for the one caller (across workers) that may do `name` in the next `seconds`."""
    try:
        return await store().claim(name, seconds)
    except Exception:
        log.warning("deployment health unavailable", exc_info=True)
        return True


async def end_cooldown(deployment_id: int) -> None:
    with contextlib.suppress(Exception):
        await store().end_cooldown(deployment_id)


async def latencies(ids: list[int]) -> dict[int, Latency]:
    """The measured deployments' average times to first byte (a deployment never measured is absent)."""
    try:
        return await store().latencies(ids)
    except Exception:
        log.warning("deployment latencies unavailable; treating every deployment as unmeasured", exc_info=True)
        return {}


# ---------------------------------------------------------------------------------------------
# Requests in flight, per process

_in_flight: dict[int, int] = {}
_freed: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = weakref.WeakKeyDictionary()


def in_flight(deployment_id: int) -> int:
    return _in_flight.get(deployment_id, 0)


def begin(deployment_id: int) -> None:
    _in_flight[deployment_id] = _in_flight.get(deployment_id, 0) + 1


def end(deployment_id: int) -> None:
    left = _in_flight.get(deployment_id, 0) - 1
    if left > 0:
        _in_flight[deployment_id] = left
    else:
        _in_flight.pop(deployment_id, None)
    event = _freed.get(asyncio.get_running_loop())
    if event is not None:
        event.set()


async def wait_for_a_free_slot(seconds: float) -> None:
    """Until some request of this loop ends (a slot of a capped deployment may be free), or `seconds`."""
    loop = asyncio.get_running_loop()
    event = _freed.get(loop)
    if event is None:
        event = _freed[loop] = asyncio.Event()
    event.clear()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


# ---------------------------------------------------------------------------------------------
# For /metrics (registered in gateway.apps): each enabled deployment's circuit as a number

CIRCUIT_VALUES = {"healthy": 0, "half-open": 1, "cooling down": 2}


def _enabled() -> list[Deployment]:
    return list(Deployment.objects.filter(enabled=True, provider__enabled=True).select_related("model", "provider"))


def circuit_samples() -> list[tuple[tuple[str, ...], float]]:
    deployments = _enabled()
    found = shared_states([d.pk for d in deployments])
    now = clock().time()
    return [
        ((str(d.pk), d.provider.name, d.model.public_id), CIRCUIT_VALUES[found[d.pk].label(now)]) for d in deployments
    ]


CIRCUIT_METRIC = (
    "chatsite_deployment_circuit_state",
    "Each enabled deployment's circuit: 0 healthy, 1 half-open (one trial request may go), 2 cooling down",
    ("deployment", "provider", "model"),
    circuit_samples,
)


def ttft_samples() -> list[tuple[tuple[str, ...], float]]:
    deployments = _enabled()
    found = shared_latencies([d.pk for d in deployments])
    return [
        ((str(d.pk), d.provider.name, d.model.public_id), found[d.pk].seconds) for d in deployments if d.pk in found
    ]


TTFT_METRIC = (
    "chatsite_deployment_ttft_average_seconds",
    "Each measured deployment's moving average of its time to first byte (what routing by latency reads)",
    ("deployment", "provider", "model"),
    ttft_samples,
)
