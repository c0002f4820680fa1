"""POST /v1/responses (OpenAI's Responses API), and the stored responses' retrieve, delete, input items.

Same auth, limits, routing and ledger as chat completions. Each attempt goes to its deployment in
the protocol it speaks: providers with `responses_api` get the request as it is (to `/responses`,
with `previous_response_id` expanded here, as they do not know our ids); every other one gets it
translated to chat completions (gateway.translate_responses) and its answer translated back, so
capability checks, the output cap's name and Anthropic upstreams work as they do for chat.

`store` (the default) keeps the response and its input for its owner (the `responses` app) before
its last event goes out, so `previous_response_id` continues it at once; another user's id is
not found, whatever the call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from catalogue.models import Deployment, LanguageModel
from core.clock import clock
from core.db import db
from core.inputs import BadInput, query_int
from gateway import routing, upstream
from gateway.auth import Caller, get_model
from gateway.bodies import encode, forwarded_body, upstream_request
from gateway.calls import Call, check_kind, error_code_of, reserve, settled
from gateway.errors import GatewayError
from gateway.protocol import ChatCompletionRequest, parse_chat_request
from gateway.protocol_responses import CreateResponse, parse_response_request
from gateway.services import ChatRelay, answer_usage, check_model_takes, normalize_completion
from gateway.streams import relay_stream
from gateway.translate_anthropic import MessagesToChatStream, UnreadableAnswer, message_to_chat_completion
from gateway.translate_responses import Ids, ResponseStream, chat_request, response_from_completion, response_usage
from responses import store
from usage import limits
from usage.tokens import Usage, estimate_prompt_tokens, estimate_tokens

RESPONSES_PATH = "/responses"
FINAL_EVENTS = frozenset(("response.completed", "response.incomplete"))


@dataclass
class _Turn:
    """One request of the conversation: what was asked, what came before, how each route is served."""

    request: CreateResponse
    model: LanguageModel
    ids: Ids
    cap: int
    input_items: list[dict[str, Any]]  # as stored, each with an id
    history: list[dict[str, Any]] = field(default_factory=list)  # the items of the earlier turns
    ancestors: list[str] = field(default_factory=list)
    chat_body: dict[str, Any] | None = None  # the translation, when it exists
    chat: ChatCompletionRequest | None = None
    untranslatable: GatewayError | None = None

    def native(self, deployment: Deployment, target: upstream.Target) -> bool:
        return deployment.provider.responses_api and not target.anthropic


def _not_found(response_id: str, param: str | None = None) -> GatewayError:
    return GatewayError(
        404,
        f"{'Previous response' if param else 'Response'} with id '{response_id[:100]}' not found.",
        param=param,
        code="previous_response_not_found" if param else "not_found",
    )


def _translate(turn: _Turn) -> None:
    """The chat request serving the turn, checked against the model's capabilities; when it cannot be
    made and every route speaks Responses, the turn goes as it is."""
    try:
        turn.chat_body = chat_request(turn.request, turn.history)
    except GatewayError as exc:
        if not all(d.provider.responses_api for d in routing.routes_of(turn.model)):
            raise
        turn.untranslatable = exc
        return
    turn.chat = parse_chat_request(turn.chat_body)
    check_model_takes(turn.chat, turn.model)


async def _prepare(
    caller: Caller, body: dict[str, Any], stream: bool, response_headers: dict[str, str] | None
) -> tuple[Call, _Turn]:
    """Validate, find the model and the earlier turns, reserve; failures after auth are ledgered."""
    call = Call(caller, body, stream=stream, public_id=str(body.get("model", "")))
    try:
        request = parse_response_request(body)
        call.public_id = request.model
        model = await get_model(request.model, caller)
        call.model = model
        check_kind(model, LanguageModel.Kind.CHAT)
        ids = Ids(f"resp_{uuid.uuid4().hex}", int(clock().time()))
        turn = _Turn(request, model, ids, request.output_cap(model.max_output_tokens), [])
        if request.previous_response_id:
            found = await db(store.conversation, caller.user.pk, request.previous_response_id)
            if found is None:
                raise _not_found(request.previous_response_id, "previous_response_id")
            turn.ancestors, turn.history = found
        turn.input_items = store.with_ids(request.input_items())
        _translate(turn)
        if turn.chat_body is not None:
            call.prompt_estimate = estimate_prompt_tokens(turn.chat_body)
        else:
            call.prompt_estimate = estimate_tokens(json.dumps([*turn.history, *turn.input_items]))
        await reserve(call, model, call.prompt_estimate, turn.cap)
    except GatewayError as exc:
        await call.finish(Usage(), exc.status, error_code_of(exc))
        raise
    if response_headers is not None:
        response_headers.update(limits.headers(call.reservation))
    call.attempts = routing.Attempts(model)
    return call, turn


def _native_body(call: Call, turn: _Turn, deployment: Deployment, stream: bool) -> bytes:
    """The client's request for a deployment speaking Responses: earlier turns inlined, our cap."""
    sent = forwarded_body(call.body, deployment, call.caller)
    sent.pop("previous_response_id", None)
    if turn.history:
        # Reasoning items we made from chat upstreams' text carry nothing such an upstream can read.
        earlier = [i for i in turn.history if i.get("type") != "reasoning" or i.get("encrypted_content")]
        sent["input"] = [*earlier, *turn.request.input_items()]
    sent["max_output_tokens"] = turn.cap
    if stream:
        sent["stream"] = True
    else:
        sent.pop("stream", None)
        sent.pop("stream_options", None)
    return encode(sent)


def _chat_body(call: Call, turn: _Turn, deployment: Deployment, target: upstream.Target, stream: bool) -> bytes:
    if turn.chat_body is None or turn.chat is None:
        assert turn.untranslatable is not None
        raise turn.untranslatable
    _path, sent = upstream_request(turn.chat_body, turn.chat, turn.model, deployment, target, stream, call.caller)
    return sent


def _chat_path(target: upstream.Target) -> str:
    return target.messages_path if target.anthropic else "/chat/completions"


def _native_usage(response: Any) -> Usage | None:
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
    if isinstance(prompt, int) and isinstance(completion, int) and prompt >= 0 and completion >= 0:
        return Usage(prompt, completion)
    return None


def _own(response: dict[str, Any], turn: _Turn) -> dict[str, Any]:
    """An upstream's Response as ours: our id, our model id, the conversation as the client sees it."""
    response["id"] = turn.ids.response_id
    response["model"] = turn.request.model
    response["previous_response_id"] = turn.request.previous_response_id
    response["store"] = turn.request.stores()
    return response


async def _keep(call: Call, turn: _Turn, response: dict[str, Any]) -> None:
    if turn.request.stores():
        ancestors = [*turn.ancestors]
        await db(store.save, call.caller.user.pk, response, turn.input_items, ancestors, clock().now())


def _usage_dict(usage: Usage) -> dict[str, Any]:
    return {**usage.as_dict(), **({"estimated": True} if usage.estimated else {})}


async def create_response(
    caller: Caller, body: dict[str, Any], *, response_headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """A non-streaming Response, kept when the request stores."""
    call, turn = await _prepare(caller, body, False, response_headers)
    attempts = call.attempts
    assert attempts is not None

    async def attempt(deployment: Deployment) -> tuple[dict[str, Any], Usage]:
        target = attempts.target
        if turn.native(deployment, target):
            payload = await upstream.post_json(target, RESPONSES_PATH, _native_body(call, turn, deployment, False))
            if not isinstance(payload.get("output"), list):
                raise upstream.bad_response(target, "a response without output")
            usage = _native_usage(payload)
            if usage is None:
                size = len(json.dumps(payload["output"]).encode())
                usage = call.estimated(size)
                payload["usage"] = response_usage(_usage_dict(usage))
            return _own(payload, turn), usage
        sent = _chat_body(call, turn, deployment, target, False)
        completion = await upstream.post_json(target, _chat_path(target), sent)
        if target.anthropic:
            try:
                completion = message_to_chat_completion(completion)
            except UnreadableAnswer as exc:
                raise upstream.bad_response(target, str(exc)) from None
        if not isinstance(completion.get("choices"), list):
            raise upstream.bad_response(target, "an answer without choices")
        normalize_completion(completion, turn.request.model)
        usage = answer_usage(call, completion)
        completion["usage"] = _usage_dict(usage) if usage.estimated else completion["usage"]
        ids = dataclasses.replace(turn.ids, completed_at=int(clock().time()))
        return response_from_completion(turn.request, completion, ids, turn.request.model), usage

    async with settled(call) as outcome:
        response, usage = await routing.first(attempts, attempt)
        outcome.usage = usage  # the answer's usage, also if keeping it fails
        await _keep(call, turn, response)
        outcome.succeeded(usage)
        return response


# ---------------------------------------------------------------------------------------------
# Streaming


@dataclass
class _TranslatedRelay:
    """A chat upstream's stream as the Responses API's events (gateway.streams.Relay)."""

    inner: ChatRelay
    stream: ResponseStream
    target: upstream.Target

    def chunks(self, data: str) -> list[dict[str, Any]]:
        return [event for chunk in self.inner.chunks(data) for event in self.stream.feed(chunk)]

    def end(self) -> None:
        self.inner.end()

    def usage(self, call: Call) -> Usage:
        return self.inner.usage(call)

    def tail(self, usage: Usage) -> list[dict[str, Any]]:
        self.stream.ids = dataclasses.replace(self.stream.ids, completed_at=int(clock().time()))
        return self.stream.finish(_usage_dict(usage))

    def failed(self, exc: GatewayError) -> list[dict[str, Any]]:
        return self.stream.fail(exc.message, exc.status)


@dataclass
class _NativeRelay:
    """A Responses upstream's events as they came, the Response in them made ours (gateway.streams.Relay)."""

    turn: _Turn
    target: upstream.Target
    reported: Usage | None = None
    output_bytes: int = 0
    ended: bool = False
    sequence: int = 0

    def chunks(self, data: str) -> list[dict[str, Any]]:
        try:
            event = json.loads(data)
        except ValueError:
            raise upstream.bad_response(self.target, "an unreadable stream event") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise upstream.bad_response(self.target, "a stream event without a type")
        kind = event["type"]
        if kind == "error":
            raise upstream.event_error(event, self.target)
        if isinstance(event.get("sequence_number"), int):
            self.sequence = event["sequence_number"]
        if isinstance(event.get("delta"), str):
            self.output_bytes += len(event["delta"].encode())
        response = event.get("response")
        if isinstance(response, dict):
            _own(response, self.turn)
            if kind in (*FINAL_EVENTS, "response.failed"):
                self.ended = True
                self.reported = _native_usage(response)
        return [event]

    def end(self) -> None:
        if not self.ended:
            raise upstream.bad_response(self.target, "a stream cut before its response ended")

    def usage(self, call: Call) -> Usage:
        return self.reported or call.estimated(self.output_bytes)

    def tail(self, usage: Usage) -> list[dict[str, Any]]:
        return []

    def failed(self, exc: GatewayError) -> list[dict[str, Any]]:
        error = {"type": "error", "code": exc.code or exc.type, "message": exc.message, "param": exc.param}
        return [{**error, "sequence_number": self.sequence + 1}]


async def stream_response(
    caller: Caller,
    body: dict[str, Any],
    *,
    keepalive: float | None,
    response_headers: dict[str, str] | None = None,
) -> AsyncIterator[dict[str, Any] | None]:
    """A streamed Response's events (None for a keep-alive); GatewayError before the first.

    A stored response is saved before its `response.completed` (or `.incomplete`) goes out.
    """
    call, turn = await _prepare(caller, body, True, response_headers)

    def attempt(
        deployment: Deployment, target: upstream.Target
    ) -> tuple[_TranslatedRelay | _NativeRelay, str, bytes, dict[str, str]]:
        if turn.native(deployment, target):
            return _NativeRelay(turn, target), RESPONSES_PATH, _native_body(call, turn, deployment, True), {}
        sent = _chat_body(call, turn, deployment, target, True)
        inner = ChatRelay(turn.request.model, False, target)
        if target.anthropic:
            inner.translator = MessagesToChatStream()
        relay = _TranslatedRelay(inner, ResponseStream(turn.request, turn.ids, turn.request.model), target)
        return relay, _chat_path(target), sent, {}

    async with contextlib.aclosing(relay_stream(call, attempt, keepalive)) as events:
        async for event in events:
            if event is not None and event.get("type") in FINAL_EVENTS:
                await _keep(call, turn, event["response"])
            yield event


# ---------------------------------------------------------------------------------------------
# Stored responses


async def retrieve(caller: Caller, response_id: str) -> dict[str, Any]:
    found = await db(store.find, caller.user.pk, response_id)
    if found is None:
        raise _not_found(response_id)
    return found


async def delete(caller: Caller, response_id: str) -> dict[str, Any]:
    if not await db(store.delete, caller.user.pk, response_id):
        raise _not_found(response_id)
    return {"id": response_id, "object": "response.deleted", "deleted": True}


def _limit(query: Any) -> int:
    try:
        return query_int(query, "limit", default=20, minimum=1, maximum=100)
    except BadInput as exc:
        raise GatewayError(400, str(exc), param="limit", code="invalid_value") from None


async def list_input_items(caller: Caller, response_id: str, query: Any) -> dict[str, Any]:
    """One page of a stored response's input items (`limit`, `order` desc by default, `after`)."""
    limit, order, after = _limit(query), query.get("order") or "desc", query.get("after")
    if order not in ("asc", "desc"):
        raise GatewayError(400, "order must be 'asc' or 'desc'.", param="order", code="invalid_value")
    items = await db(store.input_items, caller.user.pk, response_id)
    if items is None:
        raise _not_found(response_id)
    if order == "desc":
        items = items[::-1]
    if after:
        position = next((i for i, item in enumerate(items) if item.get("id") == after), None)
        if position is None:
            raise GatewayError(400, f"No input item has the id '{after[:100]}'.", param="after", code="invalid_value")
        items = items[position + 1 :]
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else "",
        "last_id": page[-1]["id"] if page else "",
        "has_more": len(items) > limit,
    }
