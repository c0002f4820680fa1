"""The serving core: one request to any /v1 endpoint (or from the browser chat), step by step.

    serving = ChatServing(caller, body, stream=False, headers=call.headers)   # an endpoint's subclass
    answer = await serving.answer()                                          # or: serving.stream(keepalive)

Every request goes the same way: parse -> find the model (the caller was authorized by
gateway.endpoint, or is the chat's) -> check its kind and what the request needs of it -> reserve
against the caller's limits -> try the model's deployments (gateway.routing) -> settle the ledger
row, the reservation and the deployments' health (`Call.finish`, whatever happened in between).
The reservation's x-ratelimit-* headers go into `headers` once reserved. `Call` is one request's
bookkeeping, from validation to its ledger row and settlement: `Call.finish` runs once, whatever
happened, and nothing else settles a call.

An endpoint's package subclasses `Serving` with what only it knows: its protocol (`parse`), what it
needs of the model (`check`), what it reserves (`estimate`), one attempt's answer (`answer_from`)
or stream (`relay_for`, a gateway.serving.relay.Relay reading the upstream's events).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel

from catalogue.models import Deployment, LanguageModel
from gateway import cache, fallbacks, routing, upstream
from gateway.auth import Caller, get_model
from gateway.errors import CLIENT_CLOSED, GatewayError, error_code_of
from gateway.serving.relay import Relay, finish_reasons_of, relay_stream
from operations import observe
from usage import limits
from usage.ledger import IN_FLIGHT, IN_FLIGHT_CODE, Flight, current_ledger
from usage.models import UsageRecord
from usage.tokens import Usage, tokens_for_bytes


@dataclass
class Call:
    """One request's bookkeeping, from validation to its ledger row and settlement."""

    caller: Caller
    body: dict[str, Any]
    stream: bool
    public_id: str = ""
    started: float = field(default_factory=time.perf_counter)
    model: LanguageModel | None = None
    ttft_ms: int | None = None
    reservation: limits.Reservation | None = None
    attempts: routing.Attempts | None = None
    finished: bool = False
    # The prompt's estimate, as reserved: the ledger's figure when the upstream reports no usage.
    prompt_estimate: int = 0
    # While in flight (from its reservation on): the ledger's note of it, and what it sent so far.
    flight: Flight | None = None
    sent: Callable[[], Usage] | None = None
    finish_reasons: tuple[str, ...] = ()  # the answer's choices' (traces)
    # Set when a fallback answers instead of the requested model (gateway.fallbacks); attempts made
    # at the models tried before it.
    answered_by: str = ""
    earlier_attempts: int = 0
    cached: bool = False  # answered from the response cache (gateway.cache): no upstream cost
    # How it ended, once finished: what the cache keeps only when it went well.
    status: int | None = None
    usage: Usage | None = None

    def first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = int((time.perf_counter() - self.started) * 1000)

    def cost(self, usage: Usage) -> Decimal:
        if self.model is None or self.cached:
            return Decimal(0)
        return self.model.cost(usage.prompt_tokens, usage.completion_tokens)

    def estimated(self, completion_bytes: int = 0) -> Usage:
        return Usage(self.prompt_estimate, tokens_for_bytes(completion_bytes), estimated=True)

    def fields(self, usage: Usage, status: int, error_code: str) -> dict[str, Any]:
        """The request's ledger row (usage.UsageRecord's fields) as it stands."""
        attempts = self.attempts
        return {
            "user": self.caller.user,
            "api_key": self.caller.api_key,
            "group_id": self.reservation.group_id if self.reservation is not None else None,
            "model": self.model,
            "model_public_id": self.public_id[:200],
            "answered_by": self.answered_by[:200],
            "deployment": attempts.current if attempts is not None else None,
            "attempts": self.earlier_attempts + (attempts.count if attempts is not None else 0),
            "source": self.caller.source,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "usage_estimated": usage.estimated,
            "cost": self.cost(usage),
            "latency_ms": int((time.perf_counter() - self.started) * 1000),
            "ttft_ms": self.ttft_ms,
            "status": status,
            "error_code": error_code[:64],
            "stream": self.stream,
            "cached": self.cached,
        }

    def in_flight(self) -> dict[str, Any]:
        """The ledger's note of the call while in flight: what it sent so far, if anything."""
        return self.fields(self.sent() if self.sent is not None else self.estimated(), IN_FLIGHT, IN_FLIGHT_CODE)

    async def finish(self, usage: Usage, status: int = 200, error_code: str = "") -> None:
        """Queue the request's ledger row and settle its reservation, once."""
        if self.finished:
            return
        self.finished = True
        self.status, self.usage = status, usage
        if self.attempts is not None:
            self.attempts.release()
        fields = self.fields(usage, status, error_code)
        if self.flight is not None:
            current_ledger().land(self.flight, fields)
        else:
            current_ledger().add(UsageRecord(**fields))
        observe.settled(fields, usage, self.finish_reasons)
        if self.reservation is not None:
            await limits.settle(self.reservation, usage.prompt_tokens, usage.completion_tokens, self.cost(usage))


@dataclass
class Outcome:
    """How a call ended, as its ledger row says: a client gone before the answer unless told otherwise."""

    usage: Usage
    status: int = CLIENT_CLOSED
    error_code: str = "client_disconnected"

    def succeeded(self, usage: Usage) -> None:
        self.usage, self.status, self.error_code = usage, 200, ""


@asynccontextmanager
async def settled(call: Call, usage: Usage | None = None) -> AsyncIterator[Outcome]:
    """Finish `call` on leaving the block, with the outcome it set or the error that left it."""
    outcome = Outcome(usage if usage is not None else call.estimated())
    try:
        yield outcome
    except GatewayError as exc:
        outcome.status, outcome.error_code = exc.status, error_code_of(exc)
        raise
    except Exception:
        outcome.status, outcome.error_code = 500, "server_error"
        raise
    finally:
        await call.finish(outcome.usage, outcome.status, outcome.error_code)


async def reserve(call: Call, model: LanguageModel, prompt_tokens: int, completion_tokens: int) -> None:
    """Reserve the request's tokens and cost against the caller's limits; a 429 when they refuse."""
    try:
        call.reservation = await limits.reserve(call.caller, model, prompt_tokens, completion_tokens)
    except limits.LimitExceeded as exc:
        observe.refused(exc.code)
        raise GatewayError(429, exc.message, type=exc.type, code=exc.code, headers=exc.headers) from None
    # From here the call is in flight: a worker dying now still leaves a row (usage.ledger).
    call.flight = current_ledger().begin(call.in_flight)


ENDPOINT_OF_KIND = {"chat": "/v1/chat/completions", "text": "/v1/completions", "embedding": "/v1/embeddings"}


def check_kind(model: LanguageModel, kind: str) -> None:
    """A 400 naming the endpoint to use when the model is of another kind than this endpoint serves."""
    if model.kind != kind:
        raise GatewayError(
            400,
            f"The model '{model.public_id}' is a{'n' if model.kind[0] in 'aeiou' else ''} {model.kind} model, "
            f"not a{'n' if kind[0] in 'aeiou' else ''} {kind} model: "
            f"use {ENDPOINT_OF_KIND[model.kind]}.",
            param="model",
            code="model_not_supported",
        )


class Request(Protocol):
    @property
    def model(self) -> str: ...


R = TypeVar("R", bound=Request)

# One deployment's stream: the relay reading its events, and the upstream path, body and extra headers.
Opened = tuple[Relay, str, bytes, dict[str, str]]


class Serving(Generic[R]):
    """One request's way through the gateway (see the module's docstring)."""

    kind: ClassVar[str] = LanguageModel.Kind.CHAT
    # Headers of the client's request that go on to the upstream (`sent_on`).
    SENT_ON: ClassVar[tuple[str, ...]] = ()
    # Whether the response cache may answer (gateway.cache; the model opts in too).
    CACHEABLE: ClassVar[bool] = True
    # The protocol's request model, whose own `stream` field decides whether the answer streams.
    PROTOCOL: ClassVar[type[BaseModel] | None] = None
    request: R
    model: LanguageModel
    looked: cache.Looked  # what the response cache has for the request (read before reserving)

    def __init__(
        self,
        caller: Caller,
        body: dict[str, Any],
        *,
        stream: bool,
        headers: dict[str, str] | None = None,
        sent_on: dict[str, str] | None = None,
        cache_control: str = "",
    ) -> None:
        self.call = Call(caller, body, stream=stream, public_id=str(body.get("model", "")))
        self.headers = headers
        self.sent_on = sent_on or {}
        self.cache_control = cache_control  # the client's Cache-Control header (gateway.cache)
        self.tried_models: set[int] = set()  # the models this request tried or weighed (fallbacks)

    # -- what an endpoint supplies -------------------------------------------------------------

    def parse(self, body: dict[str, Any]) -> R:
        """The request in the endpoint's protocol; GatewayError 400 naming the param."""
        raise NotImplementedError

    async def find_model(self, public_id: str) -> LanguageModel:
        return await get_model(public_id, self.call.caller)

    def check(self) -> None:
        """A 400 when the model cannot serve the request (beyond its kind, which is checked for all)."""

    async def load(self) -> None:
        """What else the request needs before it is reserved (the Responses API's earlier turns)."""

    def estimate(self) -> tuple[int, int]:
        """The prompt's tokens and the most the answer may take, as reserved."""
        raise NotImplementedError

    async def answer_from(self, deployment: Deployment, target: upstream.Target) -> tuple[dict[str, Any], Usage]:
        """One deployment's answer, in the client's protocol, and its usage; GatewayError on a fault."""
        raise NotImplementedError

    def relay_for(self, deployment: Deployment, target: upstream.Target) -> Opened:
        """How to stream from one deployment."""
        raise NotImplementedError

    async def keep(self, answer: dict[str, Any]) -> None:
        """Store an answer that went well before it goes out (the Responses API's stored responses)."""

    # -- the core ------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Parse, find the model, check, reserve; failures are ledgered and raised."""
        call = self.call
        try:
            self.request = self.parse(call.body)
            call.public_id = self.request.model
            self.requested = self.model = call.model = await self.find_model(self.request.model)
            self.tried_models.add(self.model.pk)
            check_kind(self.model, self.kind)
            self.check()
            await self.load()
            call.prompt_estimate, completion = self.estimate()
            wider = await fallbacks.fitting(self, call.prompt_estimate, self.tried_models)
            if wider is not None:
                self.answer_with(wider)
                call.prompt_estimate, completion = self.estimate()
            self.looked = await cache.look(self)
            if self.looked.hit is None:
                await reserve(call, self.model, call.prompt_estimate, completion)
            elif self.model.cache_hits_limited:
                replayed = self.looked.usage
                await reserve(call, self.model, replayed.prompt_tokens, replayed.completion_tokens)
        except GatewayError as exc:
            await call.finish(Usage(), exc.status, error_code_of(exc))
            raise
        if self.headers is not None:
            if call.reservation is None and self.looked.hit is not None:
                self.headers.update(await limits.peek_headers(call.caller))
            self.headers.update(limits.headers(call.reservation))
            self.headers[fallbacks.MODEL_HEADER] = self.model.public_id
        call.attempts = routing.Attempts(self.model)

    def answer_with(self, model: LanguageModel) -> None:
        """From now on the request is the fallback `model`'s: its answer says so, as its ledger row does."""
        self.model = self.call.model = model
        self.call.answered_by = model.public_id if model.pk != self.requested.pk else ""
        if self.headers is not None:
            self.headers[fallbacks.MODEL_HEADER] = model.public_id

    async def fall_back(self, failure: GatewayError) -> routing.Attempts | None:
        """Every deployment of the model failed with `failure`: Attempts at the next fallback, or None."""
        call = self.call
        model = await fallbacks.after_failure(self, self.requested, call.prompt_estimate, self.tried_models)
        if model is None or call.attempts is None:
            return None
        call.attempts.release()
        call.earlier_attempts += call.attempts.count
        self.answer_with(model)
        call.attempts = routing.Attempts(model)
        return call.attempts

    async def answer(self) -> dict[str, Any]:
        """The answer of the first deployment that gives one (or the cache's); the call settled whatever happens."""
        await self.prepare()
        if self.looked.plan is None:
            return await self.answer_prepared()
        return await cache.answer(self, self.answer_prepared)

    async def answer_prepared(self) -> dict[str, Any]:
        attempts = self.call.attempts
        assert attempts is not None
        async with settled(self.call) as outcome:
            answer, usage = await routing.first(attempts, self.answer_from, self.fall_back)
            self.call.finish_reasons = finish_reasons_of(answer)
            outcome.usage = usage  # the answer's usage, also if keeping it fails
            await self.keep(answer)
            outcome.succeeded(usage)
            return answer

    def stream(self, keepalive: float | None) -> AsyncGenerator[Any, None]:
        """The client's events (None whenever the upstream was silent for `keepalive` s), prepared on
        the first `anext`.

        GatewayError before the first; after it, a failure is the relay's last events. Closing this
        generator closes the upstream request at once.
        """
        return self._stream(keepalive)

    async def _stream(self, keepalive: float | None) -> AsyncGenerator[Any, None]:
        await self.prepare()

        def fresh() -> AsyncGenerator[Any, None]:
            return relay_stream(self.call, _prepared, self.relay_for, keepalive, self.fall_back)

        # Without the cache, the relay's events come straight through (one generator fewer per event).
        source = fresh() if self.looked.plan is None else cache.stream(self, fresh)
        async with aclosing(source) as events:
            async for event in events:
                yield event


async def _prepared() -> None:
    """Nothing more to prepare (`Serving._stream` prepared the call before looking in the cache)."""
