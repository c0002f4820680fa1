"""GET /v1/models and /v1/models/{id}: the models the caller may use, as cards (catalogue.cards.model_card),
or in Google's shape for a Gemini client (gateway.gemini_api.views)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase

from catalogue.cards import model_card
from catalogue.models import LanguageModel
from catalogue.preparing import preparing
from gateway import auth
from gateway.endpoint import ApiCall, endpoint
from gateway.errors import GatewayError
from gateway.gemini_api import views as gemini_views
from gateway.wire import json_response


def google_client(request: HttpRequest) -> bool:
    """A Gemini client (the google-genai SDKs call /v1 by default) sends its key as x-goog-api-key."""
    return "x-goog-api-key" in request.headers


async def models(request: HttpRequest) -> HttpResponseBase:
    """The catalogue, as the client's family knows it: Google's list for a Gemini client, else OpenAI's."""
    return await (gemini_views.models if google_client(request) else openai_models)(request)


async def model(request: HttpRequest, model: str) -> HttpResponseBase:
    return await (gemini_views.model if google_client(request) else openai_model)(request, model=model)


@endpoint("GET")
async def openai_models(call: ApiCall) -> HttpResponseBase:
    listed = await auth.list_models(call.caller)
    kind = call.request.GET.get("kind")
    if kind is not None:
        if kind not in LanguageModel.Kind.values:
            raise GatewayError(
                400, f"Unknown kind {kind[:40]!r}: one of {', '.join(LanguageModel.Kind.values)}.", param="kind"
            )
        listed = [m for m in listed if m.kind == kind]
    cards = [model_card(m) for m in listed]
    # Ours: models this server is still preparing (the bundled local model during `make run`'s first minutes).
    coming = [{"id": i, "status": s} for i, s in preparing().items() if all(c["id"] != i for c in cards)]
    return json_response({"object": "list", "data": cards, **({"preparing": coming} if coming else {})})


@endpoint("GET")
async def openai_model(call: ApiCall, model: str) -> HttpResponseBase:
    return json_response(model_card(await auth.get_model(model, call.caller)))
