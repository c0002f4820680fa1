"""/v1/vector_stores and below: parse the path and the body, call gateway.vector_stores.serving, answer JSON."""

from __future__ import annotations

from django.http import HttpResponseBase

from gateway.endpoint import ApiCall, by_method, endpoint
from gateway.vector_stores import serving
from gateway.wire import json_response


@endpoint("POST", body=True)
async def _create(call: ApiCall) -> HttpResponseBase:
    return json_response(await serving.create_store(call.caller, call.body))


@endpoint("GET")
async def _list(call: ApiCall) -> HttpResponseBase:
    return json_response(await serving.list_stores(call.caller, call.request.GET))


@endpoint("GET")
async def _get(call: ApiCall, store_id: str) -> HttpResponseBase:
    return json_response(await serving.get_store(call.caller, store_id))


@endpoint("POST", body=True)
async def _update(call: ApiCall, store_id: str) -> HttpResponseBase:
    return json_response(await serving.update_store(call.caller, store_id, call.body))


@endpoint("DELETE")
async def _delete(call: ApiCall, store_id: str) -> HttpResponseBase:
    return json_response(await serving.delete_store(call.caller, store_id))


@endpoint("POST", body=True)
async def _add_file(call: ApiCall, store_id: str) -> HttpResponseBase:
    return json_response(await serving.add_file(call.caller, store_id, call.body))


@endpoint("GET")
async def _list_files(call: ApiCall, store_id: str) -> HttpResponseBase:
    return json_response(await serving.list_files(call.caller, store_id, call.request.GET))


@endpoint("GET")
async def _get_file(call: ApiCall, store_id: str, file_id: str) -> HttpResponseBase:
    return json_response(await serving.get_file(call.caller, store_id, file_id))


@endpoint("POST", body=True)
async def _update_file(call: ApiCall, store_id: str, file_id: str) -> HttpResponseBase:
    return json_response(await serving.update_file(call.caller, store_id, file_id, call.body))


@endpoint("DELETE")
async def _remove_file(call: ApiCall, store_id: str, file_id: str) -> HttpResponseBase:
    return json_response(await serving.remove_file(call.caller, store_id, file_id))


@endpoint("POST", body=True)
async def create_batch(call: ApiCall, store_id: str) -> HttpResponseBase:
    return json_response(await serving.create_batch(call.caller, store_id, call.body))


@endpoint("GET")
async def batch(call: ApiCall, store_id: str, batch_id: str) -> HttpResponseBase:
    return json_response(await serving.get_batch(call.caller, store_id, batch_id))


@endpoint("POST")
async def cancel_batch(call: ApiCall, store_id: str, batch_id: str) -> HttpResponseBase:
    return json_response(await serving.cancel_batch(call.caller, store_id, batch_id))


@endpoint("GET")
async def batch_files(call: ApiCall, store_id: str, batch_id: str) -> HttpResponseBase:
    return json_response(await serving.list_batch_files(call.caller, store_id, batch_id, call.request.GET))


@endpoint("POST", body=True)
async def search(call: ApiCall, store_id: str) -> HttpResponseBase:
    return json_response(await serving.search_store(call.caller, store_id, call.body))


vector_stores = by_method(GET=_list, POST=_create)
vector_store = by_method(GET=_get, POST=_update, DELETE=_delete)
store_files = by_method(GET=_list_files, POST=_add_file)
store_file = by_method(GET=_get_file, POST=_update_file, DELETE=_remove_file)
