"""gateway.health's store shared by every worker: Redis, each deployment's circuit and its average time
to first byte a hash of their own, changed atomically by scripts."""

from __future__ import annotations

import asyncio
import math
import weakref
from typing import Any

from django.conf import settings

from core.clock import clock
from gateway.circuit import State
from gateway.errors import UpstreamFault
from gateway.latency import ALPHA, Latency

KEY_PREFIX = "chatsite:health:"
LATENCY_PREFIX = KEY_PREFIX + "latency:"
LATENCY_KEPT_SECONDS = 7 * 24 * 3600  # an average not updated for this long is forgotten (measured afresh)
# An unreachable Redis must not hang a request: health is then read as "all healthy".
_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 2}


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


# The same rule as gateway.latency.folded, in milliseconds.
_MEASURED = """
local sample = tonumber(ARGV[1])
local alpha = tonumber(ARGV[2])
local st = redis.call('HMGET', KEYS[1], 'a', 'n')
local average = tonumber(st[1])
local count = tonumber(st[2]) or 0
if average == nil then average = sample else average = average + alpha * (sample - average) end
redis.call('HSET', KEYS[1], 'a', tostring(average), 'n', count + 1, 't', ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""


class RedisStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Any, Any, Any, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self) -> tuple[Any, Any, Any, Any]:
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is None:
            from redis.asyncio import BlockingConnectionPool, Redis

            pool = BlockingConnectionPool.from_url(self.url, decode_responses=True, max_connections=8, **_TIMEOUTS)
            client = Redis(connection_pool=pool)
            register = client.register_script
            entry = (client, register(_FAILED), register(_SUCCEEDED), register(_MEASURED))
            self._clients[loop] = entry
        return entry

    async def states(self, ids: list[int]) -> dict[int, State]:
        return (await self._read(ids, states=True, latencies=False))[0]

    async def latencies(self, ids: list[int]) -> dict[int, Latency]:
        return (await self._read(ids, states=False, latencies=True))[1]

    async def observed(self, ids: list[int]) -> tuple[dict[int, State], dict[int, Latency]]:
        return await self._read(ids, states=True, latencies=True)

    async def _read(
        self, ids: list[int], *, states: bool, latencies: bool
    ) -> tuple[dict[int, State], dict[int, Latency]]:
        client = self._client()[0]
        async with client.pipeline(transaction=False) as pipe:
            for i in ids if states else ():
                pipe.hmget(KEY_PREFIX + str(i), "f", "t", "c", "r", "d")
            for i in ids if latencies else ():
                pipe.hmget(LATENCY_PREFIX + str(i), "a", "n", "t")
            rows = await pipe.execute()
        circuits = {i: _state(row) for i, row in zip(ids, rows, strict=False)} if states else {}
        averages = rows[len(ids) :] if states else rows
        return circuits, {
            i: Latency(float(average) / 1000, int(count or 0), float(at or 0) / 1000)
            for i, (average, count, at) in zip(ids, averages, strict=False)
            if average is not None
        }

    async def failed(self, deployment_id: int, fault: UpstreamFault | None) -> State:
        failed = self._client()[1]
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

    async def succeeded(self, deployment_id: int, took: float | None = None) -> None:
        client, _, succeeded, measure = self._client()
        now = clock().time()
        if took is None:
            await succeeded(keys=[KEY_PREFIX + str(deployment_id)], args=[_ms(now)])
            return
        async with client.pipeline(transaction=False) as pipe:
            await succeeded(keys=[KEY_PREFIX + str(deployment_id)], args=[_ms(now)], client=pipe)
            args = [repr(took * 1000), repr(ALPHA), _ms(now), _ms(LATENCY_KEPT_SECONDS)]
            await measure(keys=[LATENCY_PREFIX + str(deployment_id)], args=args, client=pipe)
            await pipe.execute()

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
