"""Where limit counters live: Redis (shared by every worker) or this process's memory.

Requests and tokens per minute are token buckets, stored as what was used (which drains at
`capacity` per window) rather than what is left, so lowering a limit takes effect at once.
"Remaining" is capacity minus used and "reset" the time until used drains to zero, as in
OpenAI's headers. Used may exceed the capacity when real usage beat the reservation; the debt
delays later requests instead of being forgiven. A missing bucket is an unused one.

Budgets are integer counters of spending in the current period (units of 1e-8 USD, exact in
Lua's doubles up to ~90 million dollars), including outstanding reservations. They are seeded
from the usage ledger when missing (first use in a period, or Redis lost its data), then moved
by reservations and settlements only; see usage.limits.

One acquire is one Redis round trip (a Lua script: atomic across workers), clock included:
the script reads Redis's own TIME so machines with skewed clocks still agree (unless the process
clock, core.clock, says otherwise: tests pass their own time as the scripts' last argument).
"""

from __future__ import annotations

import asyncio
import math
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from core.clock import clock

KEY_PREFIX = "chatsite:lim:"
# An unreachable Redis must fail fast (requests then pass, see usage.limits), never hang a request.
_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 5}
VERSION_KEY = KEY_PREFIX + "version"


@dataclass(frozen=True)
class Bucket:
    key: str
    capacity: int
    amount: int  # taken on acquire; on adjust, given back (negative: taken)


@dataclass(frozen=True)
class Budget:
    key: str
    limit: int
    amount: int  # added on acquire; on adjust, the correction


@dataclass(frozen=True)
class BucketState:
    remaining: int
    ms_to_full: int


@dataclass
class Outcome:
    status: str  # "ok", "rate" (a bucket is short), "budget" (spent >= limit), "seed" (budget counter missing)
    version: str
    index: int = -1  # the bucket or budget concerned
    wait_ms: int = 0
    spent: int = 0
    states: list[BucketState] = field(default_factory=list)


_ACQUIRE = """
local now = tonumber(ARGV[#ARGV])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local nb = tonumber(ARGV[1])
local nbud = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local base = 3 + 2 * nb
local version = redis.call('GET', KEYS[nb + nbud + 1]) or '0'
for j = 1, nbud do
  local spent = redis.call('GET', KEYS[nb + j])
  if not spent then return {'seed', version, j - 1} end
  if tonumber(spent) >= tonumber(ARGV[base + 2 * j - 1]) then return {'budget', version, j - 1, spent} end
end
local used = {}
local wait = 0
local denied = 0
for i = 1, nb do
  local cap = tonumber(ARGV[2 + 2 * i])
  local amount = tonumber(ARGV[3 + 2 * i])
  local rate = cap / window
  local st = redis.call('HMGET', KEYS[i], 'u', 't')
  local u = 0
  if st[1] then u = math.max(0, tonumber(st[1]) - math.max(0, now - tonumber(st[2])) * rate) end
  used[i] = u
  local over = u + math.min(amount, cap) - cap
  if over > 0 then
    local w = math.ceil(over / rate)
    if w > wait then wait = w; denied = i end
  end
end
local out
if denied > 0 then
  out = {'rate', version, denied - 1, wait}
else
  out = {'ok', version, -1, 0}
  for i = 1, nb do
    local cap = tonumber(ARGV[2 + 2 * i])
    used[i] = used[i] + tonumber(ARGV[3 + 2 * i])
    redis.call('HSET', KEYS[i], 'u', tostring(used[i]), 't', tostring(now))
    -- Kept at least a window: a drained bucket is as good as a missing one, and tests' clocks stand still.
    redis.call('PEXPIRE', KEYS[i], math.max(math.ceil(used[i] * window / cap), window) + 1000)
  end
  for j = 1, nbud do
    redis.call('INCRBY', KEYS[nb + j], ARGV[base + 2 * j])
  end
end
for i = 1, nb do
  local cap = tonumber(ARGV[2 + 2 * i])
  table.insert(out, math.floor(math.max(cap - used[i], 0)))
  table.insert(out, math.ceil(used[i] * window / cap))
end
return out
"""

_ADJUST = """
local now = tonumber(ARGV[#ARGV])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local nb = tonumber(ARGV[1])
local nbud = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
for i = 1, nb do
  local cap = tonumber(ARGV[2 + 2 * i])
  local rate = cap / window
  local st = redis.call('HMGET', KEYS[i], 'u', 't')
  local u = 0
  if st[1] then u = math.max(0, tonumber(st[1]) - math.max(0, now - tonumber(st[2])) * rate) end
  u = math.max(0, u - tonumber(ARGV[3 + 2 * i]))
  if u > 0 then
    redis.call('HSET', KEYS[i], 'u', tostring(u), 't', tostring(now))
    redis.call('PEXPIRE', KEYS[i], math.max(math.ceil(u / rate), window) + 1000)
  else
    redis.call('DEL', KEYS[i])
  end
end
for j = 1, nbud do
  -- A missing counter is reseeded from the ledger, which already holds this request.
  if redis.call('EXISTS', KEYS[nb + j]) == 1 then redis.call('INCRBY', KEYS[nb + j], ARGV[3 + 2 * nb + j]) end
end
return 1
"""

_PEEK = """
local now = tonumber(ARGV[#ARGV])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local window = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local cap = tonumber(ARGV[1 + i])
  local st = redis.call('HMGET', KEYS[i], 'u', 't')
  local u = 0
  if st[1] then u = math.max(0, tonumber(st[1]) - math.max(0, now - tonumber(st[2])) * cap / window) end
  table.insert(out, math.floor(math.max(cap - u, 0)))
  table.insert(out, math.ceil(u * window / cap))
end
return out
"""


def _acquire_args(buckets: list[Bucket], budgets: list[Budget], window_ms: int) -> tuple[list[str], list[Any]]:
    keys = [b.key for b in buckets] + [b.key for b in budgets] + [VERSION_KEY]
    args: list[Any] = [len(buckets), len(budgets), window_ms]
    for bucket in buckets:
        args += [bucket.capacity, bucket.amount]
    for budget in budgets:
        args += [budget.limit, budget.amount]
    return keys, [*args, _now_arg()]


def _now_arg() -> int:
    """The scripts' last argument: the time to count with, or -1 for Redis's own."""
    shared = clock().shared_ms()
    return -1 if shared is None else shared


def _states(flat: list[Any]) -> list[BucketState]:
    return [BucketState(int(flat[i]), max(0, int(flat[i + 1]))) for i in range(0, len(flat), 2)]


class RedisBackend:
    def __init__(self, url: str) -> None:
        self.url = url
        # redis.asyncio clients belong to the event loop that made them (tests run several loops).
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Any, Any, Any, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._sync: tuple[Any, Any] | None = None

    def _async(self) -> tuple[Any, Any, Any, Any]:
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is None:
            from redis.asyncio import BlockingConnectionPool, Redis

            # A few connections shared by all requests beat one per concurrent request (measured:
            # about twice the throughput at concurrency 32 with 16 instead of 32 connections).
            pool = BlockingConnectionPool.from_url(
                self.url, decode_responses=True, max_connections=16, timeout=5, **_TIMEOUTS
            )
            client = Redis(connection_pool=pool)
            entry = (
                client,
                client.register_script(_ACQUIRE),
                client.register_script(_ADJUST),
                client.register_script(_PEEK),
            )
            self._clients[loop] = entry
        return entry

    def _sync_client(self) -> tuple[Any, Any]:
        if self._sync is None:
            from redis import Redis

            client = Redis.from_url(self.url, decode_responses=True, **_TIMEOUTS)
            self._sync = (client, client.register_script(_PEEK))
        return self._sync

    async def acquire(self, buckets: list[Bucket], budgets: list[Budget], window_ms: int) -> Outcome:
        _, acquire, _, _ = self._async()
        keys, args = _acquire_args(buckets, budgets, window_ms)
        raw = await acquire(keys=keys, args=args)
        status, version = str(raw[0]), str(raw[1])
        if status == "seed":
            return Outcome(status, version, index=int(raw[2]))
        if status == "budget":
            return Outcome(status, version, index=int(raw[2]), spent=int(raw[3]))
        return Outcome(status, version, index=int(raw[2]), wait_ms=int(raw[3]), states=_states(raw[4:]))

    async def seed(self, key: str, spent: int, ttl_seconds: int) -> None:
        client = self._async()[0]
        await client.set(key, spent, nx=True, ex=ttl_seconds)

    async def adjust(self, buckets: list[Bucket], budgets: list[Budget], window_ms: int) -> None:
        _, _, adjust, _ = self._async()
        keys = [b.key for b in buckets] + [b.key for b in budgets]
        args: list[Any] = [len(buckets), len(budgets), window_ms]
        for bucket in buckets:
            args += [bucket.capacity, bucket.amount]
        args += [budget.amount for budget in budgets]
        await adjust(keys=keys, args=[*args, _now_arg()])

    async def peek(self, buckets: list[Bucket], window_ms: int) -> list[BucketState]:
        if not buckets:
            return []
        peek = self._async()[3]
        args = [window_ms, *(b.capacity for b in buckets), _now_arg()]
        return _states(await peek(keys=[b.key for b in buckets], args=args))

    def peek_sync(self, buckets: list[Bucket], window_ms: int) -> list[BucketState]:
        if not buckets:
            return []
        peek = self._sync_client()[1]
        args = [window_ms, *(b.capacity for b in buckets), _now_arg()]
        return _states(peek(keys=[b.key for b in buckets], args=args))

    def bump_version(self) -> None:
        self._sync_client()[0].incr(VERSION_KEY)


class MemoryBackend:
    """The same semantics for a single process (REDIS_URL unset)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (used, at ms)
        self._budgets: dict[str, tuple[int, float]] = {}  # key -> (spent, expires at s)
        self.version = 0

    @staticmethod
    def _now_ms() -> float:
        return clock().time() * 1000

    def _used(self, key: str, capacity: int, now: float, window_ms: int) -> float:
        stored = self._buckets.get(key)
        if stored is None:
            return 0.0
        used, at = stored
        return max(0.0, used - max(0.0, now - at) * capacity / window_ms)

    def _budget(self, key: str) -> int | None:
        entry = self._budgets.get(key)
        if entry is None or entry[1] < clock().time():
            return None
        return entry[0]

    @staticmethod
    def _state(used: float, capacity: int, window_ms: int) -> BucketState:
        return BucketState(int(max(capacity - used, 0)), math.ceil(used * window_ms / capacity))

    def _store(self, key: str, used: float, now: float) -> None:
        if used <= 0:
            self._buckets.pop(key, None)
        else:
            self._buckets[key] = (used, now)

    async def acquire(self, buckets: list[Bucket], budgets: list[Budget], window_ms: int) -> Outcome:
        version = str(self.version)
        with self._lock:
            for j, budget in enumerate(budgets):
                spent = self._budget(budget.key)
                if spent is None:
                    return Outcome("seed", version, index=j)
                if spent >= budget.limit:
                    return Outcome("budget", version, index=j, spent=spent)
            now = self._now_ms()
            used = [self._used(b.key, b.capacity, now, window_ms) for b in buckets]
            wait, denied = 0, -1
            for i, bucket in enumerate(buckets):
                over = used[i] + min(bucket.amount, bucket.capacity) - bucket.capacity
                if over > 0:
                    w = math.ceil(over * window_ms / bucket.capacity)
                    if w > wait:
                        wait, denied = w, i
            if denied < 0:
                for i, bucket in enumerate(buckets):
                    used[i] += bucket.amount
                    self._store(bucket.key, used[i], now)
                for budget in budgets:
                    spent, expires = self._budgets[budget.key]
                    self._budgets[budget.key] = (spent + budget.amount, expires)
            states = [self._state(u, b.capacity, window_ms) for b, u in zip(buckets, used, strict=True)]
        if denied >= 0:
            return Outcome("rate", version, index=denied, wait_ms=wait, states=states)
        return Outcome("ok", version, states=states)

    async def seed(self, key: str, spent: int, ttl_seconds: int) -> None:
        with self._lock:
            if self._budget(key) is None:
                self._budgets[key] = (spent, clock().time() + ttl_seconds)

    async def adjust(self, buckets: list[Bucket], budgets: list[Budget], window_ms: int) -> None:
        with self._lock:
            now = self._now_ms()
            for bucket in buckets:
                used = self._used(bucket.key, bucket.capacity, now, window_ms)
                self._store(bucket.key, max(0.0, used - bucket.amount), now)
            for budget in budgets:
                entry = self._budgets.get(budget.key)
                if entry is not None:
                    self._budgets[budget.key] = (entry[0] + budget.amount, entry[1])

    async def peek(self, buckets: list[Bucket], window_ms: int) -> list[BucketState]:
        return self.peek_sync(buckets, window_ms)

    def peek_sync(self, buckets: list[Bucket], window_ms: int) -> list[BucketState]:
        with self._lock:
            now = self._now_ms()
            return [self._state(self._used(b.key, b.capacity, now, window_ms), b.capacity, window_ms) for b in buckets]

    def bump_version(self) -> None:
        self.version += 1


Backend = RedisBackend | MemoryBackend
