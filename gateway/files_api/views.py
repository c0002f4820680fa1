"""/v1/files: parse the path, call gateway.files_api.serving, answer JSON (or the file's bytes)."""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseBase

from gateway.endpoint import ApiCall, by_method, endpoint
from gateway.files_api import serving
from gateway.wire import json_response


@endpoint("POST")
async def _upload(call: ApiCall) -> HttpResponseBase:
    return json_response(await serving.upload(call.caller, call.request))


@endpoint("GET")
async def _list(call: ApiCall) -> HttpResponseBase:
    return json_response(await serving.list_files(call.caller, call.request.GET))


@endpoint("GET")
async def _retrieve(call: ApiCall, file_id: str) -> HttpResponseBase:
    return json_response(await serving.retrieve(call.caller, file_id))


@endpoint("DELETE")
async def _delete(call: ApiCall, file_id: str) -> HttpResponseBase:
    return json_response(await serving.delete(call.caller, file_id))


@endpoint("GET")
async def file_content(call: ApiCall, file_id: str) -> HttpResponseBase:
    data = await serving.content(call.caller, file_id)
    # Never rendered by a browser, whatever it holds: a download.
    response = HttpResponse(data, content_type="application/octet-stream")
    response["Content-Disposition"] = "attachment"
    return response


files = by_method(GET=_list, POST=_upload)
file = by_method(GET=_retrieve, DELETE=_delete)
