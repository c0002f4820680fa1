"""/v1/files: the caller's uploads (knowledge.services keeps them), each sniffed and counted against the quotas.

Another user's file is the same 404 as a missing one, whatever the route. The upload is read from the
multipart form on a database thread (Django spools a large one to disk) and stored there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError

from core.db import db
from core.inputs import unstorable
from gateway.auth import Caller
from gateway.errors import GatewayError
from gateway.files_api.protocol import MAX_FILENAME_CHARS, PURPOSES, file_object
from gateway.listing import listing, page
from knowledge import services
from knowledge.extract import ExtractionFailed
from knowledge.models import StoredFile
from knowledge.quotas import QuotaExceeded


def not_found(file_id: str) -> GatewayError:
    return GatewayError(404, f"No such File object: {file_id[:100]}", param="id", code="not_found")


def _bad(message: str, param: str, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def _filename(name: str | None) -> str:
    cleaned = os.path.basename((name or "").replace("\\", "/")).strip()
    if not cleaned or unstorable(cleaned):
        raise _bad("The uploaded file needs a file name.", "file")
    return cleaned[-MAX_FILENAME_CHARS:]


def _upload(caller: Caller, request: HttpRequest) -> dict[str, Any]:
    if not (request.content_type or "").startswith("multipart/form-data"):
        raise _bad("Upload files as multipart/form-data with the fields 'file' and 'purpose'.", "file")
    try:
        uploads, fields = request.FILES, request.POST
    except MultiPartParserError as exc:
        raise _bad(f"The multipart form could not be read: {exc}.", "file") from None
    upload = uploads.get("file")
    if upload is None:
        raise _bad("Missing required parameter: 'file'.", "file")
    purpose = fields.get("purpose")
    if purpose not in PURPOSES:
        raise _bad(f"'purpose' must be one of: {', '.join(PURPOSES)}.", "purpose")
    name = _filename(upload.name)
    data = upload.read()
    try:
        stored = services.store_file(caller.user, name, data, purpose)
    except ExtractionFailed as exc:
        raise _bad(str(exc), "file", exc.code) from None
    except QuotaExceeded as exc:
        status = 413 if exc.code == "file_too_large" else 400
        raise GatewayError(status, str(exc), param="file", code=exc.code) from None
    return file_object(stored)


async def upload(caller: Caller, request: HttpRequest) -> dict[str, Any]:
    return await db(_upload, caller, request)


async def list_files(caller: Caller, query: Mapping[str, str]) -> dict[str, Any]:
    purpose = query.get("purpose")

    def read() -> dict[str, Any]:
        owned = StoredFile.objects.filter(owner=caller.user)
        if purpose:
            owned = owned.filter(purpose=purpose)
        rows, more = page(owned, query, cursor="public_id", default_limit=10000, max_limit=10000)
        return listing([file_object(f) for f in rows], more)

    return await db(read)


def _owned(caller: Caller, file_id: str) -> StoredFile:
    try:
        return services.owned_file(caller.user, file_id)
    except StoredFile.DoesNotExist:
        raise not_found(file_id) from None


async def retrieve(caller: Caller, file_id: str) -> dict[str, Any]:
    return file_object(await db(_owned, caller, file_id))


async def delete(caller: Caller, file_id: str) -> dict[str, Any]:
    def remove() -> None:
        try:
            services.delete_file(caller.user, file_id)
        except StoredFile.DoesNotExist:
            raise not_found(file_id) from None

    await db(remove)
    return {"id": file_id, "object": "file", "deleted": True}


async def content(caller: Caller, file_id: str) -> bytes:
    def read() -> bytes:
        with _owned(caller, file_id).content.open("rb") as handle:
            return handle.read()

    return await db(read)
