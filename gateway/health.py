"""Each deployment's health: a circuit breaker shared by every worker, and requests in flight.

    states = await health.states(ids)          # one round trip: which deployments may be tried now
    await health.failed(id, fault)             # after a retryable failure of an attempt
    await health.succeeded(id)                 # after an attempt's first byte (or answer)

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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import threading
import weakref
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection

from catalogue.models import Deployment
from core.clock import clock
from gateway.errors import UpstreamFault

log = logging.getLogger(__name__)

KEY_PREFIX = "chatsite:health:"
# An unreachable Redis must not hang a request: health is then read as "all healthy".
_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 2}


@dataclass(frozen=True)
class State:
    failures: int = 0  # consecutive failures since the last success
    trips: int = 0  # trips since the last success (the cooldown doubles with each)
    cooling_until: float = 0.0  # epoch seconds; the circuit is open until then
    retry_after_until: float = 0.0  # epoch seconds; the upstream asked us to wait until then
    unreachable: bool = False  # the last trip was a host that could not be reached (worth probing)

    def available_at(self) -> float:
        """When this deployment may be tried again (now or earlier: it may)."""
        return max(self.cooling_until, self.retry_after_until)

    def label(self, now: float) -> str:
        if self.available_at() > now:
            return "cooling down"
        return "half-open" if self.trips else "healthy"


HEALTHY = State()


def _cooldown(trips: int) -> float:
    base = float(settings.ROUTING_COOLDOWN_SECONDS)
    return min(base * 2 ** max(trips - 1, 0), float(settings.ROUTING_COOLDOWN_MAX_SECONDS))


def _after_failure(state: State, fault: UpstreamFault | None, now: float) -> State:
    """The pure rule: what a failure does to a state (both stores apply it)."""
    failures = state.failures + 1
    trips, cooling_until = state.trips, state.cooling_until
    half_open = trips > 0 and cooling_until <= now
    down = fault is not None and fault.down
    unreachable = state.unreachable
    if down or half_open or failures >= int(settings.ROUTING_FAILURES_TO_TRIP):
        trips += 1
        cooling_until = now + _cooldown(trips)
        failures = 0
        unreachable = down
    retry_until = state.retry_after_until
    if fault is not None and fault.retry_after is not None:
        retry_until = max(retry_until, now + fault.retry_after)
    return State(failures, trips, cooling_until, retry_until, unreachable)


# ---------------------------------------------------------------------------------------------
# Stores


class MemoryStore:
    def __init__(self, folder: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._states: dict[int, State] = {}
        self._claims: dict[str, float] = {}
        self._file = folder / f"{os.getpid()}.json" if folder is not None else None

    def _publish(self) -> None:
        """This process's states, for other processes to read (`shared_states`); under the lock."""
        if self._file is None:
            return
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            part = self._file.with_suffix(".part")
            part.write_text(json.dumps({str(i): astuple(s) for i, s in self._states.items()}))
            part.replace(self._file)
        except OSError:
            log.warning("could not share deployment health through %s", self._file, exc_info=True)

    async def states(self, ids: list[int]) -> dict[int, State]:
        with self._lock:
            return {i: self._states.get(i, HEALTHY) for i in ids}

    async def failed(self, deployment_id: int, fault: UpstreamFault | None) -> State:
        with self._lock:
            state = _after_failure(self._states.get(deployment_id, HEALTHY), fault, clock().time())
            self._states[deployment_id] = state
            self._publish()
            return state

    async def succeeded(self, deployment_id: int) -> None:
        with self._lock:
            state = self._states.pop(deployment_id, None)
            if state is None:
                return
            if state.retry_after_until > clock().time():
                self._states[deployment_id] = State(retry_after_until=state.retry_after_until)
            self._publish()

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


# Times are whole milliseconds here: Lua prints numbers with 14 digits, too few for epoch seconds.
_FAILED = """
local now = tonumber(ARGV[1])
local down = ARGV[2] == '1'
local retry_after = tonumber(ARGV[3])
local threshold = tonumber(ARGV[4])
local base = tonumber(ARGV[5])
local cap = tonumber(ARGV[6])
local st = redis.call('HMGET', KEYS[1], 'f', 't', 'c', 'r', 'd')
local failures = (tonumber(st[1]) or 0) + 1
local trips = tonumber(st[2]) or 0
local cooling = tonumber(st[3]) or 0
local retry_until = tonumber(st[4]) or 0
local unreachable = tonumber(st[5]) or 0
local half_open = trips > 0 and cooling <= now
if down or half_open or failures >= threshold then
  trips = trips + 1
  cooling = now + math.floor(math.min(base * 2 ^ (trips - 1), cap))
  failures = 0
  if down then unreachable = 1 else unreachable = 0 end
end
if retry_after >= 0 then retry_until = math.max(retry_until, now + math.floor(retry_after)) end
redis.call('HSET', KEYS[1], 'f', failures, 't', trips, 'c', tostring(cooling), 'r', tostring(retry_until),
  'd', unreachable)
redis.call('PEXPIRE', KEYS[1], math.max(cooling, retry_until, now) - now + cap * 4 + 60000)
return {failures, trips, tostring(cooling), tostring(retry_until), unreachable}
"""

_SUCCEEDED = """
local now = tonumber(ARGV[1])
local retry_until = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
if retry_until > now then
  redis.call('HSET', KEYS[1], 'f', 0, 't', 0, 'c', '0')
else
  redis.call('DEL', KEYS[1])
end
return 1
"""


class RedisStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Any, Any, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self) -> tuple[Any, Any, Any]:
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is None:
            from redis.asyncio import BlockingConnectionPool, Redis

            pool = BlockingConnectionPool.from_url(self.url, decode_responses=True, max_connections=8, **_TIMEOUTS)
            client = Redis(connection_pool=pool)
            entry = (client, client.register_script(_FAILED), client.register_script(_SUCCEEDED))
            self._clients[loop] = entry
        return entry

    async def states(self, ids: list[int]) -> dict[int, State]:
        client = self._client()[0]
        async with client.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hmget(KEY_PREFIX + str(i), "f", "t", "c", "r", "d")
            rows = await pipe.execute()
        return {i: _state(row) for i, row in zip(ids, rows, strict=True)}

    async def failed(self, deployment_id: int, fault: UpstreamFault | None) -> State:
        _, failed, _ = self._client()
        retry_after = fault.retry_after if fault is not None and fault.retry_after is not None else -1
        row = await failed(
            keys=[KEY_PREFIX + str(deployment_id)],
            args=[
                _ms(clock().time()),
                "1" if fault is not None and fault.down else "0",
                _ms(retry_after) if retry_after >= 0 else -1,
                int(settings.ROUTING_FAILURES_TO_TRIP),
                _ms(float(settings.ROUTING_COOLDOWN_SECONDS)),
                _ms(float(settings.ROUTING_COOLDOWN_MAX_SECONDS)),
            ],
        )
        return _state(row)

    async def succeeded(self, deployment_id: int) -> None:
        _, _, succeeded = self._client()
        await succeeded(keys=[KEY_PREFIX + str(deployment_id)], args=[_ms(clock().time())])

    async def end_cooldown(self, deployment_id: int) -> None:
        await self._client()[0].hset(KEY_PREFIX + str(deployment_id), "c", "0")

    async def claim(self, name: str, seconds: float) -> bool:
        ms = max(1, math.ceil(seconds * 1000))
        return bool(await self._client()[0].set(KEY_PREFIX + "claim:" + name, "1", nx=True, px=ms))

    async def flush(self) -> None:
        """Forget every deployment's state (tests)."""
        client = self._client()[0]
        keys = [key async for key in client.scan_iter(KEY_PREFIX + "*")]
        if keys:
            await client.delete(*keys)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _state(row: list[Any]) -> State:
    failures, trips, cooling, retry_until, unreachable = (list(row) + [None] * 5)[:5]
    return State(
        int(failures or 0),
        int(trips or 0),
        float(cooling or 0) / 1000,
        float(retry_until or 0) / 1000,
        bool(int(unreachable or 0)),
    )


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


def _files_states(folder: Path) -> dict[int, State]:
    found: dict[int, State] = {}
    for path in folder.glob("*.json") if folder.is_dir() else ():
        if not path.stem.isdigit() or not _alive(int(path.stem)):
            continue
        try:
            states = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # gone or replaced meanwhile
        for key, values in states.items():
            state = State(*values)
            found[int(key)] = _worst(found.get(int(key), HEALTHY), state)
    return found


def shared_states(ids: list[int]) -> dict[int, State]:
    """Each deployment's state as the routers of every worker see it (synchronous: reports, not requests).

    Redis when `REDIS_URL` is set; otherwise the worst a live worker of this machine holds.
    """
    if getattr(settings, "REDIS_URL", None):
        return async_to_sync(states)(ids) if ids else {}
    found = _files_states(shared_folder())
    return {i: found.get(i, HEALTHY) for i in ids}


def forget_local_state() -> None:
    """Drop this process's health state and in-flight counts (tests start clean)."""
    for found in _stores.values():
        if isinstance(found, MemoryStore) and found._file is not None:
            found._file.unlink(missing_ok=True)
    _stores.clear()
    _in_flight.clear()


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


async def succeeded(deployment_id: int) -> None:
    try:
        await store().succeeded(deployment_id)
    except Exception:
        log.warning("could not record a deployment's success", exc_info=True)


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


def circuit_samples() -> list[tuple[tuple[str, ...], float]]:
    deployments = list(
        Deployment.objects.filter(enabled=True, provider__enabled=True).select_related("model", "provider")
    )
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
