"""Gemini's API under /v1beta (and /v1, where the google-genai SDKs call it by default): generateContent,
streamGenerateContent, countTokens and the model list, answering in Google's shape.

The model is the path's (`models/{model}:method`): ids with '/' come percent-encoded
(`models/acme%2Fchat`) or as they are (`models/acme/chat`, as the google-genai SDKs and gemini-cli
build the URL); both reach the same model. A stream is server-sent events (`?alt=sse`, as every
Google SDK asks); without `alt=sse` it is the same events, which those clients read alike.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponseBase

from catalogue.models import LanguageModel
from gateway import auth
from gateway.endpoint import ApiCall, endpoint
from gateway.errors import GatewayError
from gateway.gemini_api.count import count_tokens
from gateway.gemini_api.serving import GeminiServing
from gateway.wire import GEMINI_SSE, GOOGLE, event_stream, json_response

# `models/{model}:{method}`: the id may hold '/' (sent as it is or percent-encoded) and ':'; the method
# follows the last ':'.
GEMINI_METHOD = r"^models/(?P<model>.+):(?P<method>generateContent|streamGenerateContent|countTokens)$"
# What every chat model of the catalogue answers to (its upstream's protocol does not matter).
CHAT_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]
PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@endpoint("POST", body=True, reserves=True, shape=GOOGLE)
async def model_method(call: ApiCall, model: str, method: str) -> HttpResponseBase:
    body = {**call.body, "model": model}
    if method == "countTokens":
        return json_response(await count_tokens(call.caller, body))
    stream = method == "streamGenerateContent"
    served = GeminiServing(call.caller, body, stream=stream, headers=call.headers)
    if stream:
        return await event_stream(served.stream(settings.GATEWAY_KEEPALIVE_SECONDS), GEMINI_SSE)
    return json_response(await served.answer())


def model_resource(model: LanguageModel) -> dict[str, Any]:
    """A catalogue model as Google's Model resource (the same catalogue as /v1/models)."""
    resource: dict[str, Any] = {
        "name": f"models/{model.public_id}",
        "baseModelId": model.public_id,
        "version": "001",
        "displayName": model.public_id,
        "description": model.description,
        "inputTokenLimit": model.context_length,
        "outputTokenLimit": model.max_output_tokens,
        "supportedGenerationMethods": CHAT_METHODS if model.is_chat else [],
    }
    if model.reasoning:
        resource["thinking"] = True
    return resource


def _page(call: ApiCall) -> tuple[int, int]:
    """(offset, size) of the page asked for with `pageSize` and `pageToken`; a 400 naming a bad one."""
    size_text = call.request.GET.get("pageSize") or str(PAGE_SIZE)
    token = call.request.GET.get("pageToken") or "0"
    if not size_text.isdigit() or int(size_text) <= 0:
        raise GatewayError(400, "Invalid value for 'pageSize': expected a positive integer.", param="pageSize")
    if not token.isdigit():
        raise GatewayError(400, "Invalid value for 'pageToken'.", param="pageToken")
    return int(token), min(int(size_text), MAX_PAGE_SIZE)


@endpoint("GET", shape=GOOGLE)
async def models(call: ApiCall) -> HttpResponseBase:
    offset, size = _page(call)
    listed = await auth.list_models(call.caller)
    page = listed[offset : offset + size]
    answer: dict[str, Any] = {"models": [model_resource(m) for m in page]}
    if offset + size < len(listed):
        answer["nextPageToken"] = str(offset + size)
    return json_response(answer)


@endpoint("GET", shape=GOOGLE)
async def model(call: ApiCall, model: str) -> HttpResponseBase:
    return json_response(model_resource(await auth.get_model(model, call.caller)))
