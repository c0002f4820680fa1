"""POST /v1/embeddings: models of kind `embedding`, over the serving core.

The request is OpenAI's CreateEmbeddingRequest (gateway.embeddings.protocol); it goes to the
deployment's `/embeddings` as the client sent it but for the upstream's model name, our end user
(hashed) and routing fields (dropped). Input tokens count against token limits and go to the ledger
(the upstream's count, or our estimate, flagged, when it gives none).
"""

from __future__ import annotations

from typing import Any

from catalogue.models import Deployment, LanguageModel
from gateway import upstream
from gateway.embeddings.protocol import CreateEmbeddingRequest, parse_embedding_request
from gateway.errors import GatewayError
from gateway.serving.base import Serving
from gateway.serving.bodies import sent_body
from usage.tokens import Usage, estimate_input_tokens


def _usage(payload: dict[str, Any], estimate: int) -> Usage:
    reported = payload.get("usage")
    prompt = reported.get("prompt_tokens") if isinstance(reported, dict) else None
    if isinstance(prompt, int) and prompt >= 0:
        return Usage(prompt, 0)
    payload["usage"] = {"prompt_tokens": estimate, "total_tokens": estimate}
    return Usage(estimate, 0, estimated=True)


class EmbeddingServing(Serving[CreateEmbeddingRequest]):
    kind = LanguageModel.Kind.EMBEDDING

    def parse(self, body: dict[str, Any]) -> CreateEmbeddingRequest:
        return parse_embedding_request(body)

    def estimate(self) -> tuple[int, int]:
        return estimate_input_tokens(self.request.inputs()), 0

    async def answer_from(self, deployment: Deployment, target: upstream.Target) -> tuple[dict[str, Any], Usage]:
        if target.anthropic or target.gemini:
            raise GatewayError(
                400, f"{target.api_name} has no embeddings here.", param="model", code="model_not_supported"
            )
        sent = sent_body(self.call.body, deployment, self.call.caller, None)
        payload = await upstream.post_json(target, "/embeddings", sent)
        if not isinstance(payload.get("data"), list):
            raise upstream.bad_response(target, "an answer without data")
        payload["model"] = self.model.public_id
        payload.setdefault("object", "list")
        return payload, _usage(payload, self.call.prompt_estimate)
