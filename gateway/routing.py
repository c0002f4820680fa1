"""Which deployment serves a request, and trying the next one when it fails before the first byte.

Every /v1 endpoint and the browser chat route the same way:

    attempts = routing.Attempts(model)             # model from gateway.auth (its `routes` loaded)
    while True:
        deployment = await attempts.next()         # GatewayError 503 upstream_unavailable when none may be tried
        try:
            answer = await call_upstream(deployment)     # anything raising GatewayError
        except GatewayError as exc:
            await attempts.failed(exc)             # re-raises unless another attempt may cure it
            continue
        await attempts.succeeded()                 # the first byte (or the answer) came
        break
    ...
    attempts.release()                             # the request ended: its slot is free (idempotent)

`first(attempts, attempt)` runs that loop for an answer that is not streamed. Streams run it in
gateway.serving.relay.open_first, because there "succeeded" means the first event arrived, and
nothing is retried once a byte went to the client.

Choosing: among enabled deployments whose circuit lets them be tried (gateway.health), the best
(lowest) priority; within it, the fewest requests in flight per unit of weight, ties spread by
weight with smooth weighted round-robin (deterministic: 3:1 weights give exactly 3:1). A deployment
at its concurrency cap is skipped while another has room; when none has, the request waits for a
slot (within the deadline). A failed deployment is not tried again while untried ones remain; then
the same ones are retried after a short backoff. Bounded by `ROUTING_MAX_ATTEMPTS` and
`ROUTING_DEADLINE_SECONDS` (to the first byte), so a client never waits on a cascade.

A model whose `routing` is "latency" chooses within its best priority by measured time to first
byte instead (gateway.latency); everything else (circuits, caps, retries) is the same.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from django.conf import settings

from catalogue.models import Deployment, LanguageModel
from core.clock import clock
from gateway import health, latency, upstream
from gateway.errors import GatewayError
from operations import observe

log = logging.getLogger(__name__)

T = TypeVar("T")

BACKOFF_SECONDS = 0.2  # before trying an already failed deployment again; doubles, at most BACKOFF_MAX
BACKOFF_MAX = 2.0

# Smooth weighted round-robin's running weights, per model and deployment (this process).
_current: dict[int, dict[int, int]] = {}
_probes: set[asyncio.Task[None]] = set()


def routes_of(model: LanguageModel) -> list[Deployment]:
    """The model's enabled deployments of enabled providers (loaded with it by `usable()`)."""
    routes = getattr(model, "routes", None)
    if routes is None:
        routes = [d for d in model.deployments.select_related("provider") if d.enabled and d.provider.enabled]
    return list(routes)


def _pick(model_id: int, candidates: list[Deployment]) -> Deployment:
    """Fewest in flight per unit of weight; ties by smooth weighted round-robin (nginx's)."""
    load = {d.pk: health.in_flight(d.pk) / d.weight for d in candidates}
    least = min(load.values())
    tied = [d for d in candidates if load[d.pk] == least]
    if len(tied) == 1:
        return tied[0]
    current = _current.setdefault(model_id, {})
    total = 0
    for deployment in tied:
        current[deployment.pk] = current.get(deployment.pk, 0) + deployment.weight
        total += deployment.weight
    chosen = max(tied, key=lambda d: (current[d.pk], -d.pk))
    current[chosen.pk] -= total
    return chosen


def _has_room(deployment: Deployment) -> bool:
    return deployment.max_concurrent is None or health.in_flight(deployment.pk) < deployment.max_concurrent


def unavailable(model: LanguageModel, retry_after: float | None) -> GatewayError:
    seconds = max(1, math.ceil(retry_after)) if retry_after is not None else None
    message = f"Every upstream of the model '{model.public_id}' is unavailable right now"
    message += f"; try again in {seconds} s." if seconds is not None else "; try again shortly."
    return GatewayError(
        503,
        message,
        type="upstream_error",
        code="upstream_unavailable",
        headers={"Retry-After": str(seconds)} if seconds is not None else {},
    )


class Attempts:
    """One request's tries at a model's deployments (see the module's docstring)."""

    def __init__(self, model: LanguageModel) -> None:
        self.model = model
        self.routes = routes_of(model)
        self.count = 0
        self.tried: list[int] = []
        self.current: Deployment | None = None
        self.last_error: GatewayError | None = None
        self._holding: int | None = None  # the deployment whose in-flight slot this request holds
        self._watch: observe.Watch | None = None  # the attempt as operations sees it (metrics, a span)
        self._by_latency = model.routing == LanguageModel.Routing.LATENCY
        self._sent_at: float | None = None  # when the current attempt went (core.clock), until it is measured
        self._deadline = time.monotonic() + float(settings.ROUTING_DEADLINE_SECONDS)

    @property
    def target(self) -> upstream.Target:
        assert self.current is not None
        return upstream.target_for(self.current.provider)

    def _remaining(self) -> float:
        return self._deadline - time.monotonic()

    async def next(self) -> Deployment:
        """The deployment to try now; GatewayError when no attempt is left or none may be tried."""
        self.release()
        while True:
            if self.count >= int(settings.ROUTING_MAX_ATTEMPTS) or self._remaining() <= 0:
                raise await self._exhausted()
            now = clock().time()
            states, measured = await self._health()
            available = [d for d in self.routes if states[d.pk].available_at() <= now]
            for deployment in self.routes:
                if deployment not in available and states[deployment.pk].unreachable:
                    self._probe(deployment)
            if not available:
                raise await self._exhausted(states)
            untried = [d for d in available if d.pk not in self.tried]
            if not untried:
                await asyncio.sleep(min(BACKOFF_SECONDS * 2 ** (self.count - len(self.routes)), BACKOFF_MAX))
            candidates = untried or available
            with_room = [d for d in candidates if _has_room(d)]
            if not with_room:
                await health.wait_for_a_free_slot(max(0.0, min(self._remaining(), 1.0)))
                continue
            chosen = None
            for priority in sorted({d.priority for d in with_room}):
                chosen = await self._claim([d for d in with_room if d.priority == priority], states, measured)
                if chosen is not None:
                    break
            if chosen is None:
                # Each is half-open and another request holds its one trial: look again shortly.
                await asyncio.sleep(BACKOFF_SECONDS)
                continue
            self.count += 1
            self.tried.append(chosen.pk)
            self.current = chosen
            health.begin(chosen.pk)
            self._holding = chosen.pk
            self._watch = observe.attempt(self.model, chosen)
            self._sent_at = clock().monotonic() if self._by_latency else None
            return chosen

    async def _health(self) -> tuple[dict[int, health.State], dict[int, latency.Latency]]:
        """The deployments' circuits and, for a model routed by latency, their averages (in one round trip)."""
        ids = [d.pk for d in self.routes]
        if not self._by_latency:
            return await health.states(ids), {}
        return await health.observed(ids)

    async def _claim(
        self, tier: list[Deployment], states: dict[int, health.State], measured: dict[int, latency.Latency]
    ) -> Deployment | None:
        """A deployment of the tier; a half-open one only if this request wins its one trial."""
        while tier:
            chosen = self._choose(tier, measured)
            if not states[chosen.pk].trips:
                return chosen
            if await health.claim(f"trial:{chosen.pk}", float(settings.ROUTING_COOLDOWN_SECONDS)):
                return chosen
            tier = [d for d in tier if d.pk != chosen.pk]
        return None

    def _choose(self, tier: list[Deployment], measured: dict[int, latency.Latency]) -> Deployment:
        model_id = self.model.pk
        if not self._by_latency:
            return _pick(model_id, tier)
        return latency.choose(model_id, tier, measured, lambda among: _pick(model_id, among))

    async def failed(self, exc: GatewayError) -> None:
        """The current attempt failed with `exc`: record it; re-raise unless another attempt may cure it."""
        deployment = self.current
        fault = exc.fault
        self._sent_at = None  # a failure is not measured: the circuit deals with it
        if fault is not None and fault.retryable:
            observe.failed(self._watch, deployment, exc.status, exc.code)
        self.release()
        if deployment is None or fault is None:
            raise exc
        if not fault.retryable:
            await health.succeeded(deployment.pk)  # it answered: the request was at fault, not the upstream
            raise exc
        await health.failed(deployment.pk, fault)
        self.last_error = exc
        log.info("model %s: deployment %s failed (%s); %s", self.model.public_id, deployment.pk, exc.code, "retrying")

    async def note_failure(self, exc: GatewayError) -> None:
        """A failure after the first byte (nothing is retried then): it still counts against the deployment."""
        if self.current is not None and exc.fault is not None and exc.fault.retryable:
            observe.failed(self._watch, self.current, exc.status, exc.code)
            await health.failed(self.current.pk, exc.fault)

    async def succeeded(self) -> None:
        if self.current is not None:
            await health.succeeded(self.current.pk, self._took())

    async def answered(self) -> None:
        """The first event of a stream that began with keep-alives: the success `succeeded` waited for."""
        await self.succeeded()

    def _took(self) -> float | None:
        """The current attempt's time to its first byte, once, when its model is routed by latency."""
        sent_at, self._sent_at = self._sent_at, None
        return None if sent_at is None else clock().monotonic() - sent_at

    def release(self) -> None:
        """End this request's hold on its deployment's in-flight slot (idempotent)."""
        if self._holding is not None:
            health.end(self._holding)
            self._holding = None
            observe.ended(self._watch)

    async def _exhausted(self, states: dict[int, health.State] | None = None) -> GatewayError:
        if states is None:
            states = await health.states([d.pk for d in self.routes])
        now = clock().time()
        waits = [states[d.pk].available_at() - now for d in self.routes]
        if not self.routes:
            return unavailable(self.model, None)
        if all(wait > 0 for wait in waits):
            return unavailable(self.model, min(waits))
        return self.last_error or unavailable(self.model, None)

    def _probe(self, deployment: Deployment) -> None:
        """While a deployment cools down, ask its provider for its model list now and then (never a completion)."""
        task = asyncio.get_running_loop().create_task(_probe(deployment))
        _probes.add(task)
        task.add_done_callback(_probes.discard)


async def _probe(deployment: Deployment) -> None:
    if not await health.claim(f"probe:{deployment.pk}", float(settings.ROUTING_PROBE_SECONDS)):
        return
    try:
        await upstream.list_models(upstream.target_for(deployment.provider))
    except GatewayError:
        return
    except Exception:
        log.warning("probing deployment %s failed", deployment.pk, exc_info=True)
        return
    log.info("deployment %s answers its model list again: half-open", deployment.pk)
    await health.end_cooldown(deployment.pk)


# Given why every deployment of a model failed: attempts at another model (gateway.fallbacks), or None.
FallBack = Callable[[GatewayError], Awaitable["Attempts | None"]]


async def next_of(attempts: Attempts, fall_back: FallBack | None) -> tuple[Attempts, Deployment]:
    """The deployment to try now, of `attempts`' model or, once none of it is left, of a fallback's."""
    while True:
        try:
            return attempts, await attempts.next()
        except GatewayError as exc:
            successor = await fall_back(exc) if fall_back is not None else None
            if successor is None:
                raise
            attempts = successor


async def first(
    attempts: Attempts,
    attempt: Callable[[Deployment, upstream.Target], Awaitable[T]],
    fall_back: FallBack | None = None,
) -> T:
    """The first successful `attempt(deployment, target)` over the model's deployments (and its fallbacks')."""
    while True:
        attempts, deployment = await next_of(attempts, fall_back)
        try:
            result = await attempt(deployment, attempts.target)
        except GatewayError as exc:
            await attempts.failed(exc)
            continue
        await attempts.succeeded()
        return result
