"""The serving core: one request to any /v1 endpoint (or from the browser chat), step by step.

    serving = ChatServing(caller, body, stream=False, headers=call.headers)   # an endpoint's subclass
    answer = await serving.answer()                                          # or: serving.stream(keepalive)

Every request goes the same way: parse -> find the model (the caller was authorized by
gateway.endpoint, or is the chat's) -> check its kind and what the request needs of it -> reserve
against the caller's limits -> try the model's deployments (gateway.routing) -> settle the ledger
row, the reservation and the deployments' health (`Call.finish`, whatever happened in between).
The reservation's x-ratelimit-* headers go into `headers` once reserved.

An endpoint's package subclasses `Serving` with what only it knows: its protocol (`parse`), what it
needs of the model (`check`), what it reserves (`estimate`), one attempt's answer (`answer_from`)
or stream (`relay_for`, a gateway.serving.relay.Relay reading the upstream's events).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from catalogue.models import Deployment, LanguageModel
from gateway import routing, upstream
from gateway.auth import Caller, get_model
from gateway.errors import GatewayError
from gateway.serving.call import Call, check_kind, error_code_of, reserve, settled
from gateway.serving.relay import Relay, relay_stream
from usage import limits
from usage.tokens import Usage


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
    request: R
    model: LanguageModel

    def __init__(
        self,
        caller: Caller,
        body: dict[str, Any],
        *,
        stream: bool,
        headers: dict[str, str] | None = None,
        sent_on: dict[str, str] | None = None,
    ) -> None:
        self.call = Call(caller, body, stream=stream, public_id=str(body.get("model", "")))
        self.headers = headers
        self.sent_on = sent_on or {}

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
            self.model = call.model = await self.find_model(self.request.model)
            check_kind(self.model, self.kind)
            self.check()
            await self.load()
            call.prompt_estimate, completion = self.estimate()
            await reserve(call, self.model, call.prompt_estimate, completion)
        except GatewayError as exc:
            await call.finish(Usage(), exc.status, error_code_of(exc))
            raise
        if self.headers is not None:
            self.headers.update(limits.headers(call.reservation))
        call.attempts = routing.Attempts(self.model)

    async def answer(self) -> dict[str, Any]:
        """The answer of the first deployment that gives one; the call settled whatever happens."""
        await self.prepare()
        attempts = self.call.attempts
        assert attempts is not None
        async with settled(self.call) as outcome:
            answer, usage = await routing.first(attempts, self.answer_from)
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
        return relay_stream(self.call, self.prepare, self.relay_for, keepalive)
