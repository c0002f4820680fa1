"""Rate limits and spending budgets for the /v1 API and the browser chat.

The gateway calls, around every upstream call:

    reservation = await limits.reserve(caller, model, prompt_tokens, max_completion_tokens)
    ...                                   # LimitExceeded (a 429) raised before anything is sent upstream
    await limits.settle(reservation, prompt_tokens, completion_tokens, cost)   # in a finally
    response headers |= limits.headers(reservation)

Per user (a default for everyone, overridden per user) and per key (overrides only):
requests per minute and tokens per minute as token buckets, and a spending budget per
calendar day or month (UTC). Browser chats (no key) count against the user's limits.
A request billed to a group (a group's key, or a member's own requests when it is their
default group) must also pass the group's limits, whose counters every member shares.

Tokens are reserved before the call (prompt estimate + the completion tokens asked for) and
the difference to the real usage is given back or taken at settlement. The budget check
admits a request while spending plus outstanding reservations is below the budget, then
reserves the request's largest possible cost: parallel requests overshoot by at most one.

Budget spending lives in the counter store, seeded from the ledger (usage.UsageRecord)
when the period's counter is missing, then moved only by reservations and settlements: the
ledger stays the truth (a lost Redis reseeds from it) and the hot path never sums it.

When the counter store fails, requests pass (logged): an outage of Redis should not stop
the service; the ledger still records every request.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from functools import partial
from typing import Any, Protocol

from django.conf import settings
from django.db.models import Q, Sum

from core.clock import clock
from core.db import db
from usage.counters import KEY_PREFIX, Backend, Bucket, BucketState, Budget, MemoryBackend, RedisBackend
from usage.models import Limit, UsageRecord

logger = logging.getLogger(__name__)

UNITS_PER_USD = 10**8
_USD = Decimal(UNITS_PER_USD)


class LimitExceeded(Exception):
    """A request over a rate limit or budget: answered 429, with what to tell the client."""

    def __init__(self, message: str, *, type: str, code: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.code = code
        self.headers = headers


class CallerLike(Protocol):
    @property
    def user(self) -> Any: ...
    @property
    def api_key(self) -> Any: ...


class PricedModel(Protocol):
    public_id: str

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal: ...


# ---------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class ScopeLimits:
    """Effective limits of one scope; None = no limit."""

    rpm: int | None = None
    tpm: int | None = None
    budget_usd: Decimal | None = None
    period: str = Limit.Period.MONTH

    @property
    def empty(self) -> bool:
        return self.rpm is None and self.tpm is None and self.budget_usd is None


@dataclass(frozen=True)
class CallerLimits:
    user_id: int
    key_id: int | None
    user: ScopeLimits
    key: ScopeLimits
    group_id: int | None = None  # the group the caller's requests are billed to
    group: ScopeLimits = ScopeLimits()

    @property
    def empty(self) -> bool:
        return self.user.empty and self.key.empty and self.group.empty

    def scopes(self) -> list[tuple[str, str, ScopeLimits]]:
        """(kind, counter id, limits) of each scope that limits anything."""
        out = []
        if not self.user.empty:
            out.append(("user", f"u{self.user_id}", self.user))
        if self.key_id is not None and not self.key.empty:
            out.append(("key", f"k{self.key_id}", self.key))
        if self.group_id is not None and not self.group.empty:
            out.append(("group", f"g{self.group_id}", self.group))
        return out

    def owner_id(self, kind: str) -> int | None:
        return {"user": self.user_id, "key": self.key_id, "group": self.group_id}[kind]


def _positive(value: int | None) -> int | None:
    return value if value else None  # 0 means "no limit"


def _resolve(default: Limit | None, user: Limit | None, key: Limit | None) -> tuple[ScopeLimits, ScopeLimits]:
    def pick(attr: str) -> Any:
        own = getattr(user, attr) if user is not None else None
        return own if own is not None else (getattr(default, attr) if default is not None else None)

    budget: Decimal | None
    if user is not None and user.budget_usd is not None:
        budget, period = user.budget_usd, user.budget_period
    elif default is not None:
        budget, period = default.budget_usd, default.budget_period
    else:
        budget, period = None, Limit.Period.MONTH
    user_limits = ScopeLimits(
        rpm=_positive(pick("requests_per_minute")),
        tpm=_positive(pick("tokens_per_minute")),
        budget_usd=budget if budget else None,
        period=period,
    )
    return user_limits, key_scope(key) if key is not None else ScopeLimits()


def key_scope(key: Limit) -> ScopeLimits:
    """A key's or a group's own limits (they inherit nothing: the user's limits already cover every key)."""
    return ScopeLimits(
        rpm=_positive(key.requests_per_minute),
        tpm=_positive(key.tokens_per_minute),
        budget_usd=key.budget_usd if key.budget_usd else None,
        period=key.budget_period,
    )


def _query(user_id: int, key_id: int | None, group_id: int | None) -> Any:
    condition = Q(scope=Limit.Scope.DEFAULT) | Q(user_id=user_id)
    if key_id is not None:
        condition |= Q(api_key_id=key_id)
    if group_id is not None:
        condition |= Q(group_id=group_id)
    return Limit.objects.filter(condition)


def _build(user_id: int, key_id: int | None, group_id: int | None, rows: list[Limit]) -> CallerLimits:
    default = next((r for r in rows if r.scope == Limit.Scope.DEFAULT), None)
    user = next((r for r in rows if r.user_id == user_id), None)
    key = next((r for r in rows if key_id is not None and r.api_key_id == key_id), None)
    group = next((r for r in rows if group_id is not None and r.group_id == group_id), None)
    user_limits, key_limits = _resolve(default, user, key)
    group_limits = key_scope(group) if group is not None else ScopeLimits()
    return CallerLimits(user_id, key_id, user_limits, key_limits, group_id, group_limits)


def billed_group(caller: CallerLike) -> tuple[int | None, bool]:
    """The group a caller's requests are billed to, and whether that holds only while the user is a member:
    a group's key bills its group; anything else the user's default group."""
    key = caller.api_key
    if key is not None and key.group_id is not None:
        return key.group_id, False
    return caller.user.default_group_id, True


_Who = tuple[int, int | None, int | None, bool]
_cache: dict[_Who, tuple[float, CallerLimits]] = {}
_loading: dict[_Who, asyncio.Future[CallerLimits]] = {}
_seen_version: str | None = None


def _loaded(key: _Who, done: asyncio.Future[CallerLimits]) -> None:
    if _loading.get(key) is done:
        del _loading[key]


async def limits_for(
    user_id: int, key_id: int | None, group_id: int | None = None, *, if_member: bool = True
) -> CallerLimits:
    """The caller's effective limits, cached briefly in this process."""
    now = clock().monotonic()
    who = (user_id, key_id, group_id, if_member)
    hit = _cache.get(who)
    if hit is not None and hit[0] > now:
        return hit[1]
    # Concurrent requests of one caller share one query when the entry expires.
    pending = _loading.get(who)
    if pending is None or pending.get_loop() is not asyncio.get_running_loop():
        pending = asyncio.ensure_future(db(partial(limits_for_sync, if_member=if_member), user_id, key_id, group_id))
        _loading[who] = pending
        pending.add_done_callback(partial(_loaded, who))
    result = await asyncio.shield(pending)
    _cache[who] = (now + settings.LIMITS_CACHE_SECONDS, result)
    return result


def limits_for_sync(
    user_id: int, key_id: int | None, group_id: int | None = None, *, if_member: bool = True
) -> CallerLimits:
    """`if_member`: bill `group_id` only while the user is one of its members (their default group)."""
    if group_id is not None and if_member:
        from accounts.models import User

        if not User.groups.through.objects.filter(user_id=user_id, group_id=group_id).exists():
            group_id = None
    return _build(user_id, key_id, group_id, list(_query(user_id, key_id, group_id)))


async def caller_limits(caller: CallerLike) -> CallerLimits:
    group_id, if_member = billed_group(caller)
    key_id = caller.api_key.pk if caller.api_key is not None else None
    return await limits_for(caller.user.pk, key_id, group_id, if_member=if_member)


def _note_version(version: str) -> None:
    """Another worker changed limits when the shared version moved: drop what we cached."""
    global _seen_version
    if version != _seen_version:
        if _seen_version is not None:
            _cache.clear()
        _seen_version = version


def forget_local_state() -> None:
    """Drop this process's cached configuration and in-process counters (tests start clean)."""
    global _seen_version
    _cache.clear()
    _loading.clear()
    _backends.clear()
    _seen_version = None


def config_changed() -> None:
    """Called on every save or delete of a Limit, and change of whom a group bills (connected in usage.apps)."""
    _cache.clear()
    try:
        backend().bump_version()
    except Exception:  # a change must not fail because Redis is down; caches expire anyway
        logger.warning("could not announce a limits change to other workers", exc_info=True)


# ---------------------------------------------------------------------------------------------
# Counter store

_backends: dict[str | None, Backend] = {}


def backend() -> Backend:
    url: str | None = getattr(settings, "REDIS_URL", None)
    found = _backends.get(url)
    if found is None:
        found = RedisBackend(url) if url else MemoryBackend()
        _backends[url] = found
    return found


# Per-minute limits are token buckets that refill over this window.
WINDOW_MS = 60_000


# ---------------------------------------------------------------------------------------------
# Periods and money


def period_bounds(period: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    now = (now or clock().now()).astimezone(UTC)
    if period == Limit.Period.DAY:
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def spent_since(kind: str, owner_id: int, start: datetime) -> Decimal:
    """What a user (kind "user"), a key ("key") or a group ("group") spent since `start`, from the ledger."""
    owner = {{"user": "user_id", "key": "api_key_id", "group": "group_id"}[kind]: owner_id}
    total = UsageRecord.objects.filter(created_at__gte=start, **owner).aggregate(total=Sum("cost"))["total"]
    return Decimal(total or 0)


def to_units(usd: Decimal) -> int:
    return int((usd * _USD).to_integral_value(rounding=ROUND_CEILING))


def from_units(units: int) -> Decimal:
    return (Decimal(units) / _USD).quantize(Decimal("0.00000001"))


# ---------------------------------------------------------------------------------------------
# Reserve, settle, headers


@dataclass
class _Counter:
    kind: str  # "user", "key" or "group"
    what: str  # "requests" or "tokens"
    bucket: Bucket
    limit: int


@dataclass
class _BudgetCounter:
    kind: str
    owner_id: int
    budget: Budget
    limit_usd: Decimal
    period: str
    start: datetime
    end: datetime


@dataclass
class Reservation:
    """What reserve() took; hand it back to settle() exactly once (later calls do nothing)."""

    counters: list[_Counter] = field(default_factory=list)
    budgets: list[_BudgetCounter] = field(default_factory=list)
    states: list[BucketState] = field(default_factory=list)
    reserved_tokens: int = 0
    reserved_units: int = 0
    settled: bool = False
    group_id: int | None = None  # the group the request is billed to (its ledger row says so)

    @property
    def empty(self) -> bool:
        return not self.counters and not self.budgets


def _counters(limits: CallerLimits, tokens: int, units: int) -> tuple[list[_Counter], list[_BudgetCounter]]:
    counters: list[_Counter] = []
    budgets: list[_BudgetCounter] = []
    now = clock().now()
    for kind, counter_id, scope in limits.scopes():
        if scope.rpm is not None:
            counters.append(_Counter(kind, "requests", Bucket(f"{KEY_PREFIX}{counter_id}:r", scope.rpm, 1), scope.rpm))
        if scope.tpm is not None:
            bucket = Bucket(f"{KEY_PREFIX}{counter_id}:t", scope.tpm, tokens)
            counters.append(_Counter(kind, "tokens", bucket, scope.tpm))
        if scope.budget_usd is not None:
            start, end = period_bounds(scope.period, now)
            label = start.strftime("%Y%m%d" if scope.period == Limit.Period.DAY else "%Y%m")
            budget = Budget(f"{KEY_PREFIX}{counter_id}:b:{scope.period}:{label}", to_units(scope.budget_usd), units)
            owner_id = limits.owner_id(kind)
            assert owner_id is not None
            budgets.append(_BudgetCounter(kind, owner_id, budget, scope.budget_usd, scope.period, start, end))
    return counters, budgets


def _whose(kind: str) -> str:
    return {"key": "your API key", "group": "your group"}.get(kind, "your account")


def _duration(ms: int) -> str:
    """OpenAI's reset format: "20ms", "1s", "6m0s"."""
    if ms < 1000:
        return f"{ms}ms"
    seconds = math.ceil(ms / 1000)
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


def _headers_from(counters: list[_Counter], states: list[BucketState]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for what in ("requests", "tokens"):
        pairs = [(c, s) for c, s in zip(counters, states, strict=False) if c.what == what]
        if not pairs:
            continue
        # The scope that runs out first is the one that matters to the client.
        counter, state = min(pairs, key=lambda pair: (pair[1].remaining, -pair[1].ms_to_full))
        headers[f"x-ratelimit-limit-{what}"] = str(counter.limit)
        headers[f"x-ratelimit-remaining-{what}"] = str(max(0, state.remaining))
        headers[f"x-ratelimit-reset-{what}"] = _duration(state.ms_to_full)
    return headers


def headers(reservation: Reservation | None) -> dict[str, str]:
    """The x-ratelimit-* headers for the answer to the reserved request (empty when unlimited)."""
    if reservation is None:
        return {}
    return _headers_from(reservation.counters, reservation.states)


async def reserve(
    caller: CallerLike, model: PricedModel, prompt_tokens: int, max_completion_tokens: int
) -> Reservation:
    """Count one request and reserve its tokens and largest cost, or raise LimitExceeded."""
    limits = await caller_limits(caller)
    if limits.empty:
        return Reservation(group_id=limits.group_id)
    tokens = prompt_tokens + max_completion_tokens
    units = to_units(model.cost(prompt_tokens, max_completion_tokens))
    counters, budgets = _counters(limits, tokens, units)
    store = backend()
    window = WINDOW_MS
    buckets = [c.bucket for c in counters]
    try:
        for _ in range(len(budgets) + 1):
            outcome = await store.acquire(buckets, [b.budget for b in budgets], window)
            _note_version(outcome.version)
            if outcome.status != "seed":
                break
            missing = budgets[outcome.index]
            spent = to_units(await db(spent_since, missing.kind, missing.owner_id, missing.start))
            ttl = int((missing.end - clock().now()).total_seconds()) + 86400
            await store.seed(missing.budget.key, spent, ttl)
    except Exception:
        logger.warning("rate-limit store unavailable; letting the request through", exc_info=True)
        return Reservation(group_id=limits.group_id)
    if outcome.status == "budget":
        raise _budget_error(budgets[outcome.index], outcome.spent)
    if outcome.status == "rate":
        raise _rate_error(counters, outcome)
    if outcome.status != "ok":  # still "seed": the counter vanished between seed and use
        logger.warning("budget counter could not be seeded; letting the request through")
        return Reservation(group_id=limits.group_id)
    return Reservation(counters, budgets, outcome.states, tokens, units, group_id=limits.group_id)


def _rate_error(counters: list[_Counter], outcome: Any) -> LimitExceeded:
    counter = counters[outcome.index]
    retry = max(1, math.ceil(outcome.wait_ms / 1000))
    abbreviation = "RPM" if counter.what == "requests" else "TPM"
    if counter.what == "tokens" and counter.bucket.amount > counter.limit:
        detail = f"this request may use up to {counter.bucket.amount} tokens, more than the whole limit"
    else:
        used = counter.limit - outcome.states[outcome.index].remaining
        detail = f"Used {used}, Requested {counter.bucket.amount}"
    message = (
        f"Rate limit reached for {_whose(counter.kind)} on {counter.what} per minute ({abbreviation}): "
        f"Limit {counter.limit}, {detail}. Please try again in {retry}s."
    )
    extra = {"retry-after": str(retry), **_headers_from(counters, outcome.states)}
    return LimitExceeded(message, type=counter.what, code="rate_limit_exceeded", headers=extra)


def _budget_error(counter: _BudgetCounter, spent_units: int) -> LimitExceeded:
    spent = from_units(min(spent_units, to_units(counter.limit_usd) * 10))
    period = "daily" if counter.period == Limit.Period.DAY else "monthly"
    message = (
        f"You exceeded your current quota: {_whose(counter.kind)} has spent ${spent:.2f} of its "
        f"${counter.limit_usd:.2f} {period} budget. It resets at {counter.end:%Y-%m-%d %H:%M} UTC."
    )
    retry = max(1, math.ceil((counter.end - clock().now()).total_seconds()))
    # x-should-retry: the openai SDK would otherwise retry a 429 that waiting will not cure.
    extra = {"retry-after": str(retry), "x-should-retry": "false"}
    return LimitExceeded(message, type="insufficient_quota", code="insufficient_quota", headers=extra)


async def settle(reservation: Reservation, prompt_tokens: int, completion_tokens: int, cost: Decimal) -> None:
    """Replace the reservation by the real usage. Never raises; safe in a finally, even when cancelled."""
    if reservation.settled or reservation.empty:
        reservation.settled = True
        return
    reservation.settled = True
    token_delta = reservation.reserved_tokens - (prompt_tokens + completion_tokens)
    unit_delta = to_units(cost) - reservation.reserved_units
    buckets = [
        Bucket(c.bucket.key, c.bucket.capacity, token_delta)
        for c in reservation.counters
        if c.what == "tokens" and token_delta
    ]
    budgets = [Budget(b.budget.key, b.budget.limit, unit_delta) for b in reservation.budgets if unit_delta]
    if not buckets and not budgets:
        return
    try:
        await asyncio.shield(backend().adjust(buckets, budgets, WINDOW_MS))
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.warning("could not settle a rate-limit reservation", exc_info=True)


async def peek_headers(caller: CallerLike) -> dict[str, str]:
    """The x-ratelimit-* headers now, for answers that reserved nothing (e.g. a 400 after auth)."""
    limits = await caller_limits(caller)
    if limits.empty:
        return {}
    counters, _ = _counters(limits, 0, 0)
    try:
        states = await backend().peek([c.bucket for c in counters], WINDOW_MS)
    except Exception:
        logger.warning("rate-limit store unavailable", exc_info=True)
        return {}
    return _headers_from(counters, states)


def remaining_sync(limits: CallerLimits) -> dict[str, int]:
    """What remains now of each per-minute limit ("requests", "tokens"), taking nothing (the profile page)."""
    counters, _ = _counters(limits, 0, 0)
    if not counters:
        return {}
    try:
        states = backend().peek_sync([c.bucket for c in counters], WINDOW_MS)
    except Exception:
        logger.warning("rate-limit store unavailable", exc_info=True)
        return {}
    remaining: dict[str, int] = {}
    for counter, state in zip(counters, states, strict=False):
        remaining[counter.what] = min(remaining.get(counter.what, state.remaining), max(0, state.remaining))
    return remaining
