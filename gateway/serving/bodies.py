"""What every body sent upstream shares: our end user instead of the client's, no routing fields, compact JSON.

Each endpoint's serving builds its own bodies on these (the protocol its deployment's provider speaks).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.conf import settings

from catalogue.models import Deployment
from gateway.auth import Caller

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


def sent_body(
    body: dict[str, Any],
    deployment: Deployment,
    caller: Caller,
    stream: bool | None,
    *,
    drop: tuple[str, ...] = (),
    **fields: Any,
) -> bytes:
    """A client's OpenAI-style body as it goes to an OpenAI-compatible upstream: `forwarded_body`
    without `drop`, with `fields`, asking for a stream or not (None: as the client sent it)."""
    sent = forwarded_body(body, deployment, caller)
    for name in drop:
        sent.pop(name, None)
    sent.update(fields)
    if stream is not None:
        set_stream(sent, stream)
    return encode(sent)
