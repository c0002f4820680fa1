"""GET /v1/models and /v1/models/{id}: the models the caller may use, as cards (catalogue.cards.model_card)."""

from __future__ import annotations

from django.http import HttpResponseBase

from catalogue.cards import model_card
from catalogue.models import LanguageModel
from catalogue.preparing import preparing
from gateway import auth
from gateway.endpoint import ApiCall, endpoint
from gateway.errors import GatewayError
from gateway.wire import json_response


@endpoint("GET")
async def models(call: ApiCall) -> HttpResponseBase:
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
async def model(call: ApiCall, model: str) -> HttpResponseBase:
    return json_response(model_card(await auth.get_model(model, call.caller)))
