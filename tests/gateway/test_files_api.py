"""/v1/files with the openai SDK: uploads sniffed and kept, listed, read back, deleted; quotas; bad input."""

from __future__ import annotations

import io
from typing import Any

import openai
import pytest

from knowledge.models import StoredFile
from tests.gateway.conftest import Gateway
from tests.openai_schema import validate

pytestmark = pytest.mark.django_db(transaction=True)

TEXT = b"# Notes\n\nThe boiler's pressure should read 1.5 bar.\n"


def upload(client: openai.OpenAI, name: str = "notes.md", data: bytes = TEXT, purpose: Any = "assistants") -> Any:
    return client.files.create(file=(name, io.BytesIO(data)), purpose=purpose)


def test_a_file_is_uploaded_listed_read_back_and_deleted(gateway: Gateway) -> None:
    client = gateway.client()
    made = upload(client)
    assert (made.filename, made.bytes, made.purpose) == ("notes.md", len(TEXT), "assistants")
    validate(made.model_dump(mode="json", exclude_unset=True), "OpenAIFile")
    other = upload(client, "data.txt", b"plain words", "user_data")
    listed = client.files.list()
    assert [f.id for f in listed.data] == [other.id, made.id]
    validate(listed.model_dump(mode="json", exclude_unset=True), "ListFilesResponse")
    assert [f.id for f in client.files.list(purpose="user_data").data] == [other.id]
    assert client.files.retrieve(made.id).filename == "notes.md"
    assert client.files.content(made.id).read() == TEXT
    assert client.files.delete(made.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(made.id)
    assert [f.id for f in client.files.list().data] == [other.id]


def test_the_content_is_a_download_never_rendered(gateway: Gateway) -> None:
    made = upload(gateway.client(), "page.html", b"<html><script>alert(1)</script><h1>Hi</h1></html>")
    answer = gateway.http.get(f"/v1/files/{made.id}/content", headers=gateway.headers())
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"] == "attachment"


def test_a_file_past_the_size_limit_is_a_413_and_nothing_is_kept(gateway: Gateway, settings: Any) -> None:
    settings.KNOWLEDGE_MAX_FILE_BYTES = 2048
    with pytest.raises(openai.APIStatusError) as caught:
        upload(gateway.client(), data=b"word " * 1000)
    assert caught.value.status_code == 413 and "at most 2048 bytes" in caught.value.message
    assert not StoredFile.objects.exists()


def test_uploads_past_the_users_quotas_are_refused_naming_the_quota(gateway: Gateway, settings: Any) -> None:
    client = gateway.client()
    settings.KNOWLEDGE_QUOTA_BYTES = len(TEXT) * 2
    upload(client)
    upload(client)
    with pytest.raises(openai.BadRequestError) as caught:
        upload(client)
    assert caught.value.code == "quota_exceeded" and "quota" in caught.value.message
    settings.KNOWLEDGE_QUOTA_BYTES = 10**9
    settings.KNOWLEDGE_QUOTA_FILES = 2
    with pytest.raises(openai.BadRequestError) as caught:
        upload(client, data=b"x")
    assert caught.value.code == "quota_exceeded" and "2 files" in caught.value.message
    assert StoredFile.objects.count() == 2


@pytest.mark.parametrize(
    ("name", "data", "purpose", "param"),
    [
        ("a.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "assistants", "file"),
        ("a.bin", b"\x00\x01\x02\xff" * 10, "assistants", "file"),
        ("a.md", b"", "assistants", "file"),
        ("a.md", TEXT, "fine-tune", "purpose"),
    ],
)
def test_bad_uploads_are_a_400_naming_the_param(
    gateway: Gateway, name: str, data: bytes, purpose: str, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        upload(gateway.client(), name, data, purpose)
    assert caught.value.param == param
    assert not StoredFile.objects.exists()


def test_a_json_body_instead_of_a_form_is_a_400(gateway: Gateway) -> None:
    answer = gateway.http.post("/v1/files", headers=gateway.headers(), json={"purpose": "assistants"})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "file"


def test_a_bad_list_cursor_is_a_400(gateway: Gateway) -> None:
    answer = gateway.http.get("/v1/files?after=file-nope", headers=gateway.headers())
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "after"


def test_without_a_key_nothing_is_listed(gateway: Gateway) -> None:
    upload(gateway.client())
    answer = gateway.http.get("/v1/files")
    assert answer.status_code == 401


def test_an_upload_may_be_larger_than_other_api_bodies(settings: Any) -> None:
    from gateway.asgi import body_limit

    settings.MAX_REQUEST_BYTES, settings.KNOWLEDGE_MAX_FILE_BYTES = 8 * 1024 * 1024, 64 * 1024 * 1024
    assert body_limit("/v1/files") > 64 * 1024 * 1024
    assert body_limit("/v1/chat/completions") == body_limit("/v1/files/file-x") == 8 * 1024 * 1024
