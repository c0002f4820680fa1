"""/v1/responses: create one, and the caller's stored ones (retrieve, delete, input items)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from gateway.endpoint import ApiCall, endpoint, serving_endpoint
from gateway.responses_api import stored
from gateway.responses_api.serving import ResponsesServing
from gateway.wire import NAMED, json_response, method_not_allowed

create_response = serving_endpoint(ResponsesServing, NAMED)


@endpoint("GET")
async def _get_response(call: ApiCall, response_id: str) -> HttpResponseBase:
    return json_response(await stored.retrieve(call.caller, response_id))


@endpoint("DELETE")
async def _delete_response(call: ApiCall, response_id: str) -> HttpResponseBase:
    return json_response(await stored.delete(call.caller, response_id))


@csrf_exempt
async def stored_response(request: HttpRequest, response_id: str) -> HttpResponseBase:
    """GET or DELETE /v1/responses/{id}."""
    if request.method == "DELETE":
        return await _delete_response(request, response_id=response_id)
    if request.method == "GET":
        return await _get_response(request, response_id=response_id)
    return method_not_allowed("GET, DELETE")


@endpoint("GET")
async def response_input_items(call: ApiCall, response_id: str) -> HttpResponseBase:
    return json_response(await stored.list_input_items(call.caller, response_id, call.request.GET))
