"""The exact-match response cache: an identical request answered again without calling upstream.

Opt-in per model (`manage.py models cache MODEL --ttl SECONDS`) or per key (its `cache_ttl_seconds`, set in
the admin: it overrides the model's, 0 turning the cache off for the key). An entry is keyed on the caller's
scope (the user, or everyone when the model's `cache_shared` is on), the requested model, whether it
streams, and the request body normalized (keys sorted; the fields that only steer delivery or name
the client's end user left out). A streamed answer is kept as its chunks and replayed as a stream; a
passthrough's answer and chunks (gateway.verbatim) as the text they came as, so a hit is the same bytes.

Never cached unless the model's `cache_unsafe` says so: tools we run (any tool that is not a
function the client runs), `n > 1` sampled above temperature 0, `store: false`. The caller skips
the cache with `Cache-Control: no-cache` (not read, still written) or `no-store` (neither). A hit is
a ledger row at zero cost, marked `cached`, and answers with `x-chatsite-cache: hit`.

The cache is looked in before the request is reserved (`look`), so a hit reserves only the tokens it
replays, and none at all when the model's `cache_hits_limited` is off: then a caller at its rate limit
still gets cached answers, and they take nothing from its requests or tokens per minute.

Entries live in Redis when REDIS_URL is set, else in PostgreSQL (gateway.models.CachedAnswer), capped
per entry and in total (GATEWAY_CACHE_MAX_ENTRY_BYTES, GATEWAY_CACHE_MAX_TOTAL_BYTES: the oldest go
first). Expiry reads core.clock in both (Redis's own expiry only cleans up, a little later).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import json
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from core.clock import clock
from core.db import db
from gateway.models import CachedAnswer
from gateway.verbatim import Verbatim
from usage.tokens import Usage

if TYPE_CHECKING:
    from gateway.serving.base import Serving

CACHE_HEADER = "x-chatsite-cache"
# The end user's name (the upstream is told ours, hashed); `stream` is in the key on its own.
UNKEYED = ("stream", "user", "safety_identifier")


def _directives(cache_control: str) -> set[str]:
    return {part.strip().lower() for part in cache_control.split(",") if part.strip()}


def _never_cached(body: dict[str, Any]) -> bool:
    """Requests whose answers must not be replayed unless the operator says so."""
    tools = body.get("tools")
    if isinstance(tools, list) and any(
        not isinstance(t, dict) or t.get("type", "function") != "function" for t in tools
    ):
        return True
    n = body.get("n")
    temperature = body.get("temperature", 1)
    if isinstance(n, int) and n > 1 and not (isinstance(temperature, int | float) and temperature <= 0):
        return True
    return body.get("store") is False


@dataclass
class Plan:
    """What the cache does for one request: read and/or write the entry under `key`."""

    key: str
    ttl: int
    read: bool
    write: bool


def plan(serving: Serving[Any]) -> Plan | None:
    """The cache's part in a prepared request; None when it has none."""
    model, call = serving.model, serving.call
    ttl = _ttl(model, call.caller.api_key)
    if not (serving.CACHEABLE and ttl) or call.caller.source != "api" or call.answered_by:
        return None
    directives = _directives(serving.cache_control)
    if "no-store" in directives:
        return None
    if not model.cache_unsafe and _never_cached(call.body):
        return None
    scope = "shared" if model.cache_shared else f"user:{call.caller.user.pk}"
    normalized = {k: v for k, v in call.body.items() if k not in UNKEYED}
    text = json.dumps(
        [type(serving).__name__, scope, model.public_id, call.stream, normalized],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    key = hashlib.sha256(text.encode()).hexdigest()
    return Plan(key, ttl, read="no-cache" not in directives, write=True)


def _ttl(model: Any, api_key: Any) -> int:
    """The key's own setting when an admin gave it one (0: never), else the model's."""
    own = getattr(api_key, "cache_ttl_seconds", None)
    return int(own if own is not None else model.cache_ttl_seconds or 0)


def _get(key: str) -> dict[str, Any] | None:
    row = CachedAnswer.objects.filter(key=key, expires_at__gt=clock().now()).only("value").first()
    return row.value if row is not None else None


def _put(key: str, value: dict[str, Any], ttl: int) -> None:
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > settings.GATEWAY_CACHE_MAX_ENTRY_BYTES:
        return
    now = clock().now()
    with transaction.atomic():
        CachedAnswer.objects.filter(expires_at__lte=now).delete()
        CachedAnswer.objects.update_or_create(
            key=key,
            defaults={
                "value": value,
                "size": size,
                "created_at": now,
                "expires_at": now + datetime.timedelta(seconds=ttl),
            },
        )
        total = CachedAnswer.objects.aggregate(total=Sum("size"))["total"] or 0
        excess = total - settings.GATEWAY_CACHE_MAX_TOTAL_BYTES
        if excess > 0:
            drop, freed = [], 0
            for old_key, old_size in CachedAnswer.objects.order_by("created_at").values_list("key", "size").iterator():
                if freed >= excess:
                    break
                drop.append(old_key)
                freed += old_size
            CachedAnswer.objects.filter(key__in=drop).delete()


# Keeps `KEYS[1]` (value, ttl in s, size), indexed by its time of writing; drops the oldest entries
# while all of them together (their sizes in a hash, the sum in a counter) are over the cap.
_PUT = """
local old = redis.call('HGET', KEYS[3], KEYS[1])
if old then redis.call('DECRBY', KEYS[4], old) end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], KEYS[1])
redis.call('HSET', KEYS[3], KEYS[1], ARGV[3])
local total = redis.call('INCRBY', KEYS[4], ARGV[3])
while total > tonumber(ARGV[5]) do
  local oldest = redis.call('ZPOPMIN', KEYS[2])
  if #oldest == 0 then break end
  local size = redis.call('HGET', KEYS[3], oldest[1])
  redis.call('HDEL', KEYS[3], oldest[1])
  redis.call('DEL', oldest[1])
  if size then total = redis.call('DECRBY', KEYS[4], size) end
end
return total
"""
PREFIX = "chatsite:cache:"
_INDEX, _SIZES, _TOTAL = PREFIX + "index", PREFIX + "sizes", PREFIX + "total"
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, Any, Any]] = weakref.WeakKeyDictionary()


def _redis(url: str) -> tuple[Any, Any]:
    """This event loop's client of `url`, and the put script registered on it."""
    loop = asyncio.get_running_loop()
    entry = _clients.get(loop)
    if entry is None or entry[0] != url:
        from redis.asyncio import BlockingConnectionPool, Redis

        pool = BlockingConnectionPool.from_url(url, max_connections=8, socket_connect_timeout=2, socket_timeout=2)
        client = Redis(connection_pool=pool)
        entry = _clients[loop] = (url, client, client.register_script(_PUT))
    return entry[1], entry[2]


async def get(key: str) -> dict[str, Any] | None:
    url = settings.REDIS_URL
    if not url:
        return await db(_get, key)
    raw = await _redis(url)[0].get(PREFIX + key)
    if raw is None:
        return None
    value: dict[str, Any] = json.loads(raw)
    return value if value.get("expires", 0) > clock().time() else None


async def put(key: str, value: dict[str, Any], ttl: int) -> None:
    url = settings.REDIS_URL
    if not url:
        await db(_put, key, value, ttl)
        return
    raw = json.dumps({**value, "expires": clock().time() + ttl}, separators=(",", ":"))
    if len(raw) > settings.GATEWAY_CACHE_MAX_ENTRY_BYTES:
        return
    script = _redis(url)[1]
    now_ms = int(clock().time() * 1000)
    keys = [PREFIX + key, _INDEX, _SIZES, _TOTAL]
    await script(keys=keys, args=[raw, ttl, len(raw), now_ms, settings.GATEWAY_CACHE_MAX_TOTAL_BYTES])


def _kept(answer: Any) -> Any:
    """What an entry keeps of an answer or chunk: a passthrough's (Verbatim) text, so a hit is the same bytes."""
    return {_VERBATIM: answer.text} if isinstance(answer, Verbatim) else answer


def _revived(kept: Any) -> Any:
    if isinstance(kept, dict) and len(kept) == 1 and isinstance(kept.get(_VERBATIM), str):
        return Verbatim.of(kept[_VERBATIM])
    return dict(kept) if isinstance(kept, dict) else kept


_VERBATIM = "__verbatim__"  # no answer of ours has this one field only


def _usage(value: dict[str, Any]) -> Usage:
    prompt, completion = value.get("usage", (0, 0))
    return Usage(int(prompt), int(completion))


def _mark(serving: Serving[Any], state: str) -> None:
    if serving.headers is not None:
        serving.headers[CACHE_HEADER] = state


@dataclass
class Looked:
    """What `look` found for a prepared request: its plan, and the entry when there is one."""

    plan: Plan | None
    hit: dict[str, Any] | None = None

    @property
    def usage(self) -> Usage:
        assert self.hit is not None
        return _usage(self.hit)


async def look(serving: Serving[Any]) -> Looked:
    """The cache's plan for a request whose model is found, and its entry (read before reserving)."""
    chosen = plan(serving)
    hit = await get(chosen.key) if chosen is not None and chosen.read else None
    if hit is not None:
        _mark(serving, "hit")
    elif chosen is not None:
        _mark(serving, "miss")
    return Looked(chosen, hit)


async def answer(serving: Serving[Any], fresh: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """The cached answer of a prepared request, or `fresh()`'s, kept when it went well."""
    from gateway.serving.base import settled

    looked = serving.looked
    if looked.hit is not None:
        serving.call.cached = True
        usage = looked.usage
        async with settled(serving.call, usage) as outcome:
            outcome.succeeded(usage)
        revived: dict[str, Any] = _revived(looked.hit["answer"])
        return revived
    result = await fresh()
    call, chosen = serving.call, looked.plan
    if chosen is not None and chosen.write and call.status == 200 and call.usage is not None:
        usage = call.usage
        kept = {"answer": _kept(result), "usage": [usage.prompt_tokens, usage.completion_tokens]}
        await put(chosen.key, kept, chosen.ttl)
    return result


async def stream(serving: Serving[Any], fresh: Callable[[], AsyncGenerator[Any, None]]) -> AsyncGenerator[Any, None]:
    """A prepared request's stream: the cached chunks replayed, or `fresh()`'s, kept when it ended well."""
    from gateway.serving.base import settled

    looked = serving.looked
    if looked.hit is not None:
        serving.call.cached = True
        usage = looked.usage
        async with settled(serving.call, usage) as outcome:
            for chunk in looked.hit["chunks"]:
                yield _revived(chunk)
            outcome.succeeded(usage)
        return
    recorded: list[Any] = []
    async with contextlib.aclosing(fresh()) as events:
        async for item in events:
            if item is not None:
                recorded.append(_kept(item))
            yield item
    call, chosen = serving.call, looked.plan
    if chosen is not None and chosen.write and call.status == 200 and call.usage is not None:
        usage = call.usage
        await put(chosen.key, {"chunks": recorded, "usage": [usage.prompt_tokens, usage.completion_tokens]}, chosen.ttl)
