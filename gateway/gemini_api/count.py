"""Gemini's countTokens: the upstream's own count when the model is on Gemini's API, else our estimate.

A model with deployments speaking Gemini's API has them asked (their native `:countTokens`, the key
in x-goog-api-key), routed and failed over like any call (gateway.routing), and the client gets
Google's answer as it came (gateway.verbatim). Any other model's count is the estimate limits and
budgets reserve with. Either way nothing is reserved and nothing is ledgered: counting is free.
"""

from __future__ import annotations

from typing import Any

from catalogue.models import Deployment, Provider
from gateway import routing, upstream
from gateway.auth import Caller, get_model
from gateway.gemini_api.estimate import estimate_gemini_tokens
from gateway.gemini_api.protocol import parse_count_tokens_request, parse_generate_request
from gateway.serving.bodies import encode
from gateway.verbatim import Verbatim

_INNER = ("generateContentRequest", "generate_content_request")


def upstream_body(body: dict[str, Any], upstream_model: str) -> bytes:
    """The client's countTokens request for one deployment: a generateContentRequest names its model,
    as Google requires (`models/{model}`); the rest goes as it came."""
    sent = {name: value for name, value in body.items() if name != "model"}
    for name in _INNER:
        if isinstance(sent.get(name), dict):
            sent[name] = {**sent[name], "model": f"models/{upstream_model.removeprefix('models/')}"}
    return encode(sent)


async def _counted(body: dict[str, Any], deployment: Deployment, target: upstream.Target) -> Verbatim:
    path = target.gemini_method(deployment.upstream_model, "countTokens")
    answer = await upstream.post_verbatim(target, path, upstream_body(body, deployment.upstream_model))
    total = answer.get("totalTokens", 0)  # Google leaves a zero out
    if not isinstance(total, int) or isinstance(total, bool):
        raise upstream.bad_response(target, "a count without totalTokens")
    return answer


async def count_tokens(caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    """The prompt's tokens, as a Gemini upstream counts them or as we estimate them (see the docstring).

    The model must be one the key may call: counting tells as much about a model as calling it.
    """
    request = parse_count_tokens_request(body)
    inner = request.generate_content_request
    counted = {**inner, "model": request.model} if inner is not None else body
    parse_generate_request(counted)  # errors name the fields as generateContent's do
    model = await get_model(request.model, caller)
    attempts = routing.Attempts(model)
    attempts.routes = [d for d in attempts.routes if d.provider.kind == Provider.Kind.GEMINI]
    if not attempts.routes:
        return {"totalTokens": estimate_gemini_tokens(counted)}
    try:
        return await routing.first(attempts, lambda deployment, target: _counted(body, deployment, target))
    finally:
        attempts.release()
