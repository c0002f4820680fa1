"""What goes upstream: the body of each attempt, in the protocol its deployment's provider speaks.

OpenAI-compatible upstreams get the client's chat body, untouched but for a few fields; Anthropic's
get it translated (gateway.translate_anthropic), or, for an Anthropic client, its own request (Native).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from catalogue.models import Deployment, LanguageModel
from gateway.auth import Caller
from gateway.protocol import ChatCompletionRequest
from gateway.translate_anthropic import messages_body
from gateway.upstream import Target

# Fields some upstreams (LiteLLM and other gateways) read as where and how to send the request on:
# a client of ours must not steer our upstream to another address or account.
ROUTING_FIELDS = ("api_base", "base_url", "api_key", "api_version", "extra_headers", "custom_llm_provider")
# Fields naming the client's own end user; the upstream gets our user instead (see upstream_user).
END_USER_FIELDS = ("user", "safety_identifier")


def upstream_user(user_id: int) -> str:
    """Who calls, as the upstream sees it: our user id, hashed with a key derived from SECRET_KEY.

    Stable per user (upstreams use it to trace abuse), meaningless outside this server.
    """
    key = hashlib.sha256(b"chatsite.upstream-user:" + settings.SECRET_KEY.encode()).digest()
    return "user-" + hmac.new(key, str(user_id).encode(), hashlib.sha256).hexdigest()[:32]


def encode(body: dict[str, Any]) -> bytes:
    """A body as it goes upstream: compact UTF-8 JSON."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def forwarded_body(body: dict[str, Any], deployment: Deployment, caller: Caller) -> dict[str, Any]:
    """A client's OpenAI-style body as every upstream gets it: the deployment's model name, the end
    user ours (hashed) instead of the client's, and routing fields dropped."""
    forwarded = dict(body)
    forwarded["model"] = deployment.upstream_model
    for name in ROUTING_FIELDS:
        forwarded.pop(name, None)
    for name in END_USER_FIELDS:
        if name in forwarded:
            forwarded[name] = upstream_user(caller.user.pk)
    return forwarded


def upstream_body(body: dict[str, Any], deployment: Deployment, stream: bool, caller: Caller, cap: int) -> bytes:
    """The client's chat body as `forwarded_body` makes it, with our usage needs and the output cap."""
    forwarded = forwarded_body(body, deployment, caller)
    # Every upstream gets a cap, under the one name it knows: a server that ignores the other name
    # writes until its own limit (llama.cpp knows only max_tokens, OpenAI's reasoning models only
    # max_completion_tokens).
    forwarded.pop("max_tokens", None)
    forwarded.pop("max_completion_tokens", None)
    forwarded[deployment.provider.output_cap_param] = cap
    if forwarded.get("tools") is False:
        del forwarded["tools"]
    set_stream(forwarded, stream)
    return encode(forwarded)


def set_stream(sent: dict[str, Any], stream: bool) -> None:
    """Ask an OpenAI-compatible upstream for a stream or not; a stream always with its usage chunk."""
    if stream:
        sent["stream"] = True
        # We always want the usage chunk for the ledger; the client gets it only if it asked.
        options = sent.get("stream_options")
        sent["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    else:
        sent.pop("stream", None)
        sent.pop("stream_options", None)


def _anthropic_body(
    request: ChatCompletionRequest, model: LanguageModel, deployment: Deployment, stream: bool, caller: Caller
) -> bytes:
    """The chat request as a Messages body for an Anthropic upstream (end user ours, hashed)."""
    body = messages_body(request, max_tokens=request.output_cap(model.max_output_tokens))
    body["model"] = deployment.upstream_model
    if "metadata" in body:
        body["metadata"] = {"user_id": upstream_user(caller.user.pk)}
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    return encode(body)


def upstream_request(
    body: dict[str, Any],
    request: ChatCompletionRequest,
    model: LanguageModel,
    deployment: Deployment,
    target: Target,
    stream: bool,
    caller: Caller,
) -> tuple[str, bytes]:
    """The upstream path and body of one attempt, in the protocol the deployment's provider speaks."""
    if target.anthropic:
        return target.messages_path, _anthropic_body(request, model, deployment, stream, caller)
    cap = request.output_cap(model.max_output_tokens)
    return "/chat/completions", upstream_body(body, deployment, stream, caller, cap)


@dataclass
class Native:
    """An Anthropic client's own Messages request, sent as it is to deployments that speak Anthropic's API.

    `cache_control`, thinking blocks and their signatures, betas' fields survive (no round trip
    through OpenAI's format); `answer` receives the upstream's Message as it came.
    """

    body: dict[str, Any]
    beta: str | None = None
    answer: dict[str, Any] | None = None

    def headers(self) -> dict[str, str]:
        return {"anthropic-beta": self.beta} if self.beta else {}

    def request(self, deployment: Deployment, caller: Caller, stream: bool = False) -> bytes:
        sent = dict(self.body)
        sent["model"] = deployment.upstream_model
        if stream:
            sent["stream"] = True
        else:
            sent.pop("stream", None)
        metadata = sent.get("metadata")
        if isinstance(metadata, dict) and "user_id" in metadata:
            sent["metadata"] = {**metadata, "user_id": upstream_user(caller.user.pk)}
        return encode(sent)
