"""One /v1 request's bookkeeping, whatever its endpoint: the ledger row, the settlement, kinds.

    call = Call(caller, body, stream=False, public_id=...)
    await reserve(call, model, prompt_tokens, completion_tokens)    # 429 when the limits refuse
    ...
    await call.finish(usage, status, error_code)                    # once, whatever happened

or, for an answer that is not streamed:

    async with settled(call) as outcome:                            # finishes the call on leaving
        answer = ...
        outcome.succeeded(usage)
        return answer

Every endpoint (chat, completions, embeddings, responses, messages) settles through `Call.finish`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from catalogue.models import LanguageModel
from gateway import routing
from gateway.auth import Caller
from gateway.errors import GatewayError
from operations import observe
from usage import limits
from usage.ledger import IN_FLIGHT, IN_FLIGHT_CODE, Flight, current_ledger
from usage.models import UsageRecord
from usage.tokens import Usage, estimate_prompt_tokens, tokens_for_bytes

CLIENT_CLOSED = 499  # nginx's "client closed request", for streams the consumer abandoned


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
    # The prompt's estimate when the body is not a chat request (completions, responses, embeddings).
    prompt_estimate: int | None = None
    # While in flight (from its reservation on): the ledger's note of it, and what it sent so far.
    flight: Flight | None = None
    sent: Callable[[], Usage] | None = None
    finish_reasons: tuple[str, ...] = ()  # the answer's choices' (traces)

    def first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = int((time.perf_counter() - self.started) * 1000)

    def cost(self, usage: Usage) -> Decimal:
        return self.model.cost(usage.prompt_tokens, usage.completion_tokens) if self.model else Decimal(0)

    def estimated(self, completion_bytes: int = 0) -> Usage:
        prompt = self.prompt_estimate if self.prompt_estimate is not None else estimate_prompt_tokens(self.body)
        return Usage(prompt, tokens_for_bytes(completion_bytes), estimated=True)

    def fields(self, usage: Usage, status: int, error_code: str) -> dict[str, Any]:
        """The request's ledger row (usage.UsageRecord's fields) as it stands."""
        attempts = self.attempts
        return {
            "user": self.caller.user,
            "api_key": self.caller.api_key,
            "group_id": self.reservation.group_id if self.reservation is not None else None,
            "model": self.model,
            "model_public_id": self.public_id[:200],
            "deployment": attempts.current if attempts is not None else None,
            "attempts": attempts.count if attempts is not None else 0,
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
        }

    def in_flight(self) -> dict[str, Any]:
        """The ledger's note of the call while in flight: what it sent so far, if anything."""
        return self.fields(self.sent() if self.sent is not None else self.estimated(), IN_FLIGHT, IN_FLIGHT_CODE)

    async def finish(self, usage: Usage, status: int = 200, error_code: str = "") -> None:
        """Queue the request's ledger row and settle its reservation, once."""
        if self.finished:
            return
        self.finished = True
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


def finish_reasons_of(answer: Any) -> tuple[str, ...]:
    """Why an answer's choices (or a stream's last chunk's) ended: "stop", "length", "tool_calls", ..."""
    choices = answer.get("choices") if isinstance(answer, dict) else None
    reasons = (c.get("finish_reason") for c in choices or () if isinstance(c, dict))
    return tuple(r for r in reasons if isinstance(r, str))


def error_code_of(exc: GatewayError) -> str:
    return exc.code or exc.type


async def rate_limit_headers(caller: Caller) -> dict[str, str]:
    """The x-ratelimit-* headers for an answer that reserved nothing (an error after auth, /v1/models)."""
    return await limits.peek_headers(caller)


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
