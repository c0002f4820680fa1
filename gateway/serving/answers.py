"""An upstream's OpenAI-shaped answer made ours: our public model id, and what the spec requires filled in.

Chat and text completions share this; each adds what its choices carry.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from gateway import upstream
from gateway.serving.call import Call
from usage.tokens import Usage, reported_usage


def choices_of(payload: dict[str, Any], target: upstream.Target) -> list[Any]:
    """The answer's choices; GatewayError (retryable) when it has none."""
    choices = payload.get("choices")
    if not isinstance(choices, list):
        raise upstream.bad_response(target, "an answer without choices")
    return choices


def own_answer(payload: dict[str, Any], public_id: str, kind: str, id_prefix: str) -> list[dict[str, Any]]:
    """Fill what some upstreams omit and the spec requires; answer with our public model id.

    Returns the choices that are objects, for the endpoint to fill in what its own choices carry.
    """
    payload["model"] = public_id
    payload.setdefault("id", f"{id_prefix}{uuid.uuid4().hex}")
    payload["object"] = kind
    if not isinstance(payload.get("created"), int):
        payload["created"] = int(time.time())
    choices = []
    for position, choice in enumerate(payload["choices"]):
        if not isinstance(choice, dict):
            continue
        choice.setdefault("index", position)
        choice.setdefault("logprobs", None)
        if choice.get("finish_reason") is None:
            choice["finish_reason"] = "stop"
        choices.append(choice)
    return choices


def answer_usage(call: Call, payload: dict[str, Any], completion_bytes: int) -> Usage:
    """The upstream's reported usage, or an estimate written into the answer (flagged in the ledger)."""
    reported = reported_usage(payload.get("usage"))
    if reported is not None:
        return reported
    usage = call.estimated(completion_bytes)
    payload["usage"] = usage.as_dict()
    return usage
