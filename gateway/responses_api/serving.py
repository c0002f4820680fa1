"""POST /v1/responses (OpenAI's Responses API) over the serving core.

Each attempt goes to its deployment in the protocol it speaks: providers with `responses_api` get the
request as it is (to `/responses`, with `previous_response_id` expanded here, as they do not know
our ids); every other one gets it translated to chat completions (gateway.translate_responses) and
served as a chat request (gateway.chat_completions.serving), its answer translated back, so
capability checks, the output cap's name and Anthropic upstreams work as they do for chat.

`store` (the default) keeps the response and its input for its owner (the `responses` app) before
its last event goes out, so `previous_response_id` continues it at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from catalogue.models import Deployment
from core.clock import clock
from core.db import db
from gateway import routing, upstream
from gateway.chat_completions.protocol import parse_chat_request
from gateway.chat_completions.serving import ChatServing, TranslatedRelay, check_model_takes
from gateway.errors import GatewayError
from gateway.responses_api.hosted import HostedLoop, asks_hosted_tools
from gateway.responses_api.protocol import CreateResponse, parse_response_request
from gateway.responses_api.stored import not_found
from gateway.serving.base import Call, Opened
from gateway.serving.bodies import encode, forwarded_body
from gateway.translate_responses import Ids, ResponseStream, chat_request, response_from_completion, response_usage
from responses import store
from usage.tokens import Usage, estimate_prompt_tokens, estimate_tokens

RESPONSES_PATH = "/responses"
FINAL_EVENTS = frozenset(("response.completed", "response.incomplete"))


def _native_usage(response: Any) -> Usage | None:
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
    if isinstance(prompt, int) and isinstance(completion, int) and prompt >= 0 and completion >= 0:
        return Usage(prompt, completion)
    return None


def _usage_dict(usage: Usage) -> dict[str, Any]:
    return {**usage.as_reported(), **({"estimated": True} if usage.estimated else {})}


@dataclass
class _TranslatedRelay(TranslatedRelay):
    """A chat upstream's stream as the Responses API's events."""

    stream: ResponseStream | None = None

    def feed(self, chunk: dict[str, Any]) -> list[Any]:
        assert self.stream is not None
        return self.stream.feed(chunk)

    def tail(self, usage: Usage) -> list[dict[str, Any]]:
        assert self.stream is not None
        self.stream.ids = dataclasses.replace(self.stream.ids, completed_at=int(clock().time()))
        return self.stream.finish(_usage_dict(usage))

    def failed(self, exc: GatewayError) -> list[dict[str, Any]]:
        assert self.stream is not None
        return self.stream.fail(exc.message, exc.status)


@dataclass
class _NativeRelay:
    """A Responses upstream's events as they came, the Response in them made ours."""

    serving: ResponsesServing
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
            self.serving.own(response)
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


class ResponsesServing(ChatServing):
    """One turn of a conversation: what was asked, what came before, how each route is served."""

    PROTOCOL = CreateResponse
    CACHEABLE = False  # each answer is a response of its own (its id, stored under it)

    request: CreateResponse
    history: list[dict[str, Any]]  # the items of the earlier turns
    ancestors: list[str]
    input_items: list[dict[str, Any]]  # as stored, each with an id
    untranslatable: GatewayError | None = None
    runs_hosted_tools = False  # the turn's hosted tools are ours to run (gateway.responses_api.hosted)
    approvals: dict[str, str] | None = None  # the results of the MCP calls this turn approved, by request id

    def parse(self, body: dict[str, Any]) -> CreateResponse:
        return parse_response_request(body)

    def check(self) -> None:
        pass  # the chat translation's, once the earlier turns are known (load)

    async def load(self) -> None:
        request = self.request
        self.ids = Ids(f"resp_{uuid.uuid4().hex}", int(clock().time()))
        self.cap = request.output_cap(self.model.max_output_tokens)
        self.history, self.ancestors = [], []
        if request.previous_response_id:
            found = await db(store.conversation, self.call.caller.user.pk, request.previous_response_id)
            if found is None:
                raise not_found(request.previous_response_id, "previous_response_id")
            self.ancestors, self.history = found
        self.input_items = store.with_ids(request.input_items())
        self.translate()

    def translate(self) -> None:
        """The chat request serving the turn, checked against the model's capabilities; when it cannot be
        made and every route speaks Responses, the turn goes as it is."""
        try:
            self.chat_body = chat_request(
                self.request, self.history, hosted=self.runs_hosted_tools, approvals=self.approvals
            )
        except GatewayError as exc:
            if not all(d.provider.responses_api for d in routing.routes_of(self.model)):
                raise
            self.untranslatable = exc
            return
        self.chat = parse_chat_request(self.chat_body)
        check_model_takes(self.chat, self.model)

    def estimate(self) -> tuple[int, int]:
        if self.untranslatable is None:
            return estimate_prompt_tokens(self.chat_body), self.cap
        return estimate_tokens(json.dumps([*self.history, *self.input_items])), self.cap

    def native(self, deployment: Deployment, target: upstream.Target) -> bool:
        return deployment.provider.responses_api and not target.anthropic

    def native_body(self, deployment: Deployment, stream: bool) -> bytes:
        """The client's request for a deployment speaking Responses: earlier turns inlined, our cap."""
        sent = forwarded_body(self.call.body, deployment, self.call.caller)
        sent.pop("previous_response_id", None)
        if self.history:
            # Reasoning items we made from chat upstreams' text carry nothing such an upstream can read.
            earlier = [i for i in self.history if i.get("type") != "reasoning" or i.get("encrypted_content")]
            sent["input"] = [*earlier, *self.request.input_items()]
        sent["max_output_tokens"] = self.cap
        if stream:
            sent["stream"] = True
        else:
            sent.pop("stream", None)
            sent.pop("stream_options", None)
        return encode(sent)

    def chat_request(self, deployment: Deployment, target: upstream.Target, stream: bool) -> tuple[str, bytes]:
        if self.untranslatable is not None:
            raise self.untranslatable
        return super().chat_request(deployment, target, stream)

    def own(self, response: dict[str, Any]) -> dict[str, Any]:
        """An upstream's Response as ours: our id, our model id, the conversation as the client sees it."""
        response["id"] = self.ids.response_id
        response["model"] = self.model.public_id
        response["previous_response_id"] = self.request.previous_response_id
        response["store"] = self.request.stores()
        return response

    async def answer_from(self, deployment: Deployment, target: upstream.Target) -> tuple[dict[str, Any], Usage]:
        if self.native(deployment, target):
            payload = await upstream.post_json(target, RESPONSES_PATH, self.native_body(deployment, False))
            if not isinstance(payload.get("output"), list):
                raise upstream.bad_response(target, "a response without output")
            usage = _native_usage(payload)
            if usage is None:
                usage = self.call.estimated(len(json.dumps(payload["output"]).encode()))
                payload["usage"] = response_usage(_usage_dict(usage))
            return self.own(payload), usage
        completion = await self.completion_from(deployment, target)
        usage = self.completion_usage(completion)
        completion["usage"] = _usage_dict(usage) if usage.estimated else completion["usage"]
        ids = dataclasses.replace(self.ids, completed_at=int(clock().time()))
        return response_from_completion(self.request, completion, ids, self.model.public_id), usage

    def relay_for(self, deployment: Deployment, target: upstream.Target) -> Opened:
        if self.native(deployment, target):
            return _NativeRelay(self, target), RESPONSES_PATH, self.native_body(deployment, True), {}
        path, sent = self.chat_request(deployment, target, True)
        inner = self.chat_relay(target, False)
        stream = ResponseStream(self.request, self.ids, self.model.public_id)
        return _TranslatedRelay(inner, target, stream), path, sent, {}

    async def keep(self, answer: dict[str, Any]) -> None:
        if self.request.stores():
            now = clock().now()
            await db(store.save, self.call.caller.user.pk, answer, self.input_items, [*self.ancestors], now)

    async def answer(self) -> dict[str, Any]:
        if asks_hosted_tools(self.call.body):
            loop = HostedLoop(self)
            hosted = await loop.prepare()
            if hosted is not None:
                return await loop.answer(hosted)
        return await super().answer()

    async def stream(self, keepalive: float | None) -> AsyncGenerator[Any, None]:
        """A stored response is saved before its `response.completed` (or `.incomplete`) goes out."""
        if asks_hosted_tools(self.call.body):
            loop = HostedLoop(self)
            hosted = await loop.prepare()
            if hosted is not None:
                async with contextlib.aclosing(loop.stream(hosted, keepalive)) as hosted_events:
                    async for event in hosted_events:
                        yield event
                return
        async with contextlib.aclosing(super().stream(keepalive)) as events:
            async for event in events:
                if event is not None and event.get("type") in FINAL_EVENTS:
                    await self.keep(event["response"])
                yield event
