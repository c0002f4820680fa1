"""POST /v1/embeddings: models of kind `embedding`, with the auth, limits, routing and ledger of chat.

The request is OpenAI's CreateEmbeddingRequest (gateway.protocol_embeddings); it goes to the
deployment's `/embeddings` as the client sent it but for the upstream's model name, our end user
(hashed) and routing fields (dropped). Input tokens count against token limits and go to the ledger
(the upstream's count, or our estimate, flagged, when it gives none).
"""

from __future__ import annotations

from typing import Any

from catalogue.models import Deployment, LanguageModel
from gateway import routing, upstream
from gateway.auth import Caller, get_model
from gateway.bodies import encode, forwarded_body
from gateway.calls import Call, check_kind, error_code_of, reserve, settled
from gateway.errors import GatewayError
from gateway.protocol_embeddings import parse_embedding_request
from usage import limits
from usage.tokens import Usage, estimate_input_tokens


def _usage(payload: dict[str, Any], estimate: int) -> Usage:
    reported = payload.get("usage")
    prompt = reported.get("prompt_tokens") if isinstance(reported, dict) else None
    if isinstance(prompt, int) and prompt >= 0:
        return Usage(prompt, 0)
    payload["usage"] = {"prompt_tokens": estimate, "total_tokens": estimate}
    return Usage(estimate, 0, estimated=True)


async def create_embeddings(
    caller: Caller, body: dict[str, Any], *, response_headers: dict[str, str] | None = None
) -> dict[str, Any]:
    call = Call(caller, body, stream=False, public_id=str(body.get("model", "")))
    estimate = 0
    try:
        request = parse_embedding_request(body)
        call.public_id = request.model
        model: LanguageModel = await get_model(request.model, caller)
        call.model = model
        check_kind(model, LanguageModel.Kind.EMBEDDING)
        estimate = estimate_input_tokens(request.inputs())
        await reserve(call, model, estimate, 0)
    except GatewayError as exc:
        await call.finish(Usage(), exc.status, error_code_of(exc))
        raise
    if response_headers is not None:
        response_headers.update(limits.headers(call.reservation))
    attempts = call.attempts = routing.Attempts(model)

    async def attempt(deployment: Deployment) -> dict[str, Any]:
        target = attempts.target
        if target.anthropic:
            raise GatewayError(400, "Anthropic's API has no embeddings.", param="model", code="model_not_supported")
        payload = await upstream.post_json(target, "/embeddings", encode(forwarded_body(body, deployment, caller)))
        if not isinstance(payload.get("data"), list):
            raise upstream.bad_response(target, "an answer without data")
        return payload

    async with settled(call, Usage(estimate, 0, estimated=True)) as outcome:
        payload = await routing.first(attempts, attempt)
        payload["model"] = request.model
        payload.setdefault("object", "list")
        outcome.succeeded(_usage(payload, estimate))
        return payload
