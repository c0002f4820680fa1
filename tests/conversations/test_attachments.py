"""Chat attachments over HTTP and the socket: upload, download, removal, sending; the owner alone."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from catalogue.models import LanguageModel
from conversations import actions, export, files, services
from conversations.models import Attachment, Conversation, Message
from tests import sample_files
from tests.conversations.conftest import Connect, finished, until
from tests.fake_upstream import FakeUpstream
from tests.inprocess import InProcessApp
from tests.signed_in import sign_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60), pytest.mark.usefixtures("media")]

UPLOAD = "/files/"


def upload(client: httpx.Client, name: str, data: bytes, content_type: str = "application/octet-stream") -> Any:
    return client.post(UPLOAD, files={"file": (name, data, content_type)})


def error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def stored_files(media: Path) -> list[Path]:
    return [p for p in media.rglob("*") if p.is_file()]


def test_an_image_is_uploaded_and_served_to_its_owner_as_an_attachment(as_alice: httpx.Client) -> None:
    image = sample_files.png()
    answer = upload(as_alice, "screenshot.png", image, "image/png")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body | {"id": 0, "url": ""} == {
        "id": 0,
        "name": "screenshot.png",
        "size": len(image),
        "kind": "image",
        "content_type": "image/png",
        "tokens": 85,
        "url": "",
    }
    served = as_alice.get(body["url"])
    assert served.status_code == 200
    assert served.content == image
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["Content-Disposition"] == 'attachment; filename="screenshot.png"'
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert "default-src 'none'" in served.headers["Content-Security-Policy"]
    assert "no-cache" in served.headers["Cache-Control"] or "no-store" in served.headers["Cache-Control"]


def test_a_document_reports_its_token_count(as_alice: httpx.Client) -> None:
    body = upload(as_alice, "report.pdf", sample_files.pdf("Hello from the PDF")).json()
    assert (body["kind"], body["content_type"]) == ("document", "application/pdf")
    assert body["tokens"] == -(-len("Hello from the PDF") // 3)
    assert Attachment.objects.get(pk=body["id"]).text == "Hello from the PDF"


def test_another_user_cannot_download_list_or_remove_a_file(
    as_alice: httpx.Client, as_bob: httpx.Client, alice: User, chat_model: LanguageModel, app: InProcessApp
) -> None:
    body = upload(as_alice, "private.txt", b"alice's secret plan").json()
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    actions.do_send(alice, conversation.pk, "see file", [body["id"]])

    assert as_bob.get(body["url"]).status_code == 404
    assert as_bob.delete(body["url"]).status_code == 404
    assert as_bob.get(f"/api/conversations/{conversation.pk}/messages/").status_code == 404
    assert "alice's secret plan" not in as_bob.get(body["url"]).text
    anonymous = app.client().get(body["url"])
    assert anonymous.status_code == 401
    assert Attachment.objects.filter(pk=body["id"]).exists()

    listed = as_alice.get(f"/api/conversations/{conversation.pk}/messages/").json()["results"]
    assert listed[0]["attachments"] == [
        {
            "id": body["id"],
            "name": "private.txt",
            "size": 19,
            "kind": "document",
            "content_type": "text/plain",
            "tokens": 7,
            "url": body["url"],
        }
    ]


def test_an_oversized_file_is_refused_and_nothing_is_stored(as_alice: httpx.Client, settings: Any, media: Path) -> None:
    settings.ATTACHMENT_MAX_BYTES = 2048
    answer = upload(as_alice, "big.txt", b"x" * 4096)
    assert answer.status_code == 413
    assert error(answer)["message"].startswith("The file is too large: at most")
    huge = upload(as_alice, "huge.txt", b"x" * (200 * 1024))  # refused by its Content-Length alone
    assert huge.status_code == 413 and error(huge)["code"] == "too_large"
    assert Attachment.objects.count() == 0 and stored_files(media) == []


@pytest.mark.parametrize(
    ("name", "data"),
    [("holiday.jpg", b"MZ\x90\x00\x03" + bytes(300)), ("cv.pdf", b"<html><script>alert(1)</script></html>")],
)
def test_a_disguised_file_is_refused_with_a_clear_error(
    as_alice: httpx.Client, media: Path, name: str, data: bytes
) -> None:
    answer = upload(as_alice, name, data, "image/jpeg")
    assert answer.status_code == 415
    problem = error(answer)
    assert problem["code"] == "disguised_file" and problem["param"] == "file"
    assert "not what its name says" in problem["message"]
    assert Attachment.objects.count() == 0 and stored_files(media) == []


def test_an_executable_is_refused(as_alice: httpx.Client) -> None:
    answer = upload(as_alice, "setup", b"\x7fELF\x02\x01\x01" + bytes(300))
    assert answer.status_code == 415 and "does not take" in error(answer)["message"]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("page.html", b"<html><body><script>document.title='pwned'</script></body></html>"),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    ],
)
def test_html_and_svg_with_script_are_only_ever_downloaded(as_alice: httpx.Client, name: str, data: bytes) -> None:
    body = upload(as_alice, name, data, "text/html").json()
    assert body["kind"] == "document" and body["content_type"] == "text/plain"
    served = as_alice.get(body["url"])
    assert served.content == data
    assert served.headers["Content-Type"] == "application/octet-stream"
    assert served.headers["Content-Disposition"].startswith("attachment;")
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]


def test_a_hostile_file_name_is_kept_as_text_and_quoted_in_the_download(as_alice: httpx.Client) -> None:
    name = "<img src=x onerror=alert(1)> “quoted”.txt"
    body = upload(as_alice, name, b"hello").json()
    assert body["name"] == name
    served = as_alice.get(body["url"])
    assert served.headers["Content-Disposition"] == (
        "attachment; filename*=utf-8''%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%20%E2%80%9Cquoted%E2%80%9D.txt"
    )
    # What a browser's multipart encoding cannot carry, a client could still send: no header splits.
    assert files.clean_name('a"\r\nX-Evil: 1.txt') == 'a"X-Evil: 1.txt'


def test_an_upload_needs_the_csrf_token(app: InProcessApp, alice: User) -> None:
    client = sign_in(app.client(), alice, csrf=False)
    assert upload(client, "a.txt", b"hi").status_code == 403
    assert Attachment.objects.count() == 0


def test_a_request_without_a_file_is_a_clear_400(as_alice: httpx.Client) -> None:
    answer = as_alice.post(UPLOAD, data={"other": "x"}, files={"nope": ("a.txt", b"hi")})
    assert answer.status_code == 400 and error(answer)["code"] == "missing_file"


def test_an_unsent_file_can_be_removed_a_sent_one_not(
    as_alice: httpx.Client, alice: User, chat_model: LanguageModel, media: Path
) -> None:
    first = upload(as_alice, "a.txt", b"first").json()
    second = upload(as_alice, "b.txt", b"second").json()
    assert len(stored_files(media)) == 2
    assert as_alice.delete(first["url"]).status_code == 204
    assert len(stored_files(media)) == 1
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    actions.do_send(alice, conversation.pk, "", [second["id"]])
    assert as_alice.delete(second["url"]).status_code == 409


def test_deleting_the_conversation_deletes_its_files_from_storage(
    as_alice: httpx.Client, alice: User, chat_model: LanguageModel, media: Path
) -> None:
    body = upload(as_alice, "notes.md", b"# notes").json()
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    actions.do_send(alice, conversation.pk, "read this", [body["id"]])
    assert len(stored_files(media)) == 1
    assert as_alice.delete(f"/api/conversations/{conversation.pk}/").status_code == 204
    assert not Attachment.objects.exists()
    assert stored_files(media) == []


# --- the socket ---------------------------------------------------------------------------------------


@sync_to_async
def store(user: User, name: str, data: bytes) -> Attachment:
    return files.store(user, name, data)


@sync_to_async
def user_messages(conversation: Conversation) -> list[Message]:
    return list(conversation.messages.filter(role="user"))


async def test_sending_another_users_file_is_refused_and_stores_nothing(
    alice: User, bob: User, conversation: Conversation, connect: Connect
) -> None:
    bobs = await store(bob, "bob.txt", b"bob's file")
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await socket.send_json_to({"type": "send", "content": "what does it say?", "attachments": [bobs.pk]})
    refused, _ = await until(socket, lambda f: f["type"] == "error")
    assert refused["code"] == "refused" and "no longer available" in refused["message"]
    assert await user_messages(conversation) == []
    assert (await sync_to_async(Attachment.objects.get)(pk=bobs.pk)).message_id is None


async def test_a_files_text_reaches_the_model_as_context(
    alice: User, conversation: Conversation, connect: Connect, fake_upstream: FakeUpstream
) -> None:
    pdf = await store(alice, "minutes.pdf", sample_files.pdf("The budget is 42 pounds"))
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "What is the budget?", "attachments": [pdf.pk]})
    stored, _ = await until(socket, lambda f: f["type"] == "message" and f["message"]["role"] == "user")
    assert [a["name"] for a in stored["message"]["attachments"]] == ["minutes.pdf"]
    await until(socket, finished)
    sent = fake_upstream.last.body
    assert sent is not None
    assert sent["messages"][-1] == {
        "role": "user",
        "content": '<file name="minutes.pdf">\nThe budget is 42 pounds\n</file>\n\nWhat is the budget?',
    }


async def test_an_image_goes_as_a_data_url_to_a_model_with_vision_only(
    alice: User, conversation: Conversation, chat_model: LanguageModel, connect: Connect, fake_upstream: FakeUpstream
) -> None:
    image = await store(alice, "cat.png", sample_files.png())
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "What is this?", "attachments": [image.pk]})
    refused, _ = await until(socket, lambda f: f["type"] == "error")
    assert "does not take images" in refused["message"]
    assert await user_messages(conversation) == []

    chat_model.vision = True
    await sync_to_async(chat_model.save)()
    await socket.send_json_to({"type": "send", "content": "What is this?", "attachments": [image.pk]})
    await until(socket, finished)
    sent = fake_upstream.last.body
    assert sent is not None
    encoded = base64.b64encode(sample_files.png()).decode()
    assert sent["messages"][-1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}},
        ],
    }


async def test_a_message_may_be_files_alone(alice: User, conversation: Conversation, connect: Connect) -> None:
    note = await store(alice, "todo.txt", b"buy milk")
    socket = await connect(alice, conversation.pk)
    await socket.send_json_to({"type": "send", "content": "", "attachments": [note.pk]})
    stored, _ = await until(socket, lambda f: f["type"] == "message" and f["message"]["role"] == "user")
    assert stored["message"]["content"] == ""
    await until(socket, finished)
    conversation_row = await sync_to_async(Conversation.objects.get)(pk=conversation.pk)
    assert conversation_row.title == "todo.txt"


def test_uploads_left_unsent_for_a_day_are_deleted_and_waiting_ones_are_capped(
    as_alice: httpx.Client, alice: User, bob: User, clock: Any, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = upload(as_alice, "old.txt", b"forgotten").json()
    bobs = files.store(bob, "bob.txt", b"bob's")
    clock.advance(25 * 3600)
    kept = upload(as_alice, "new.txt", b"fresh").json()
    assert list(Attachment.objects.filter(owner=alice).values_list("pk", flat=True)) == [kept["id"]]
    assert as_alice.get(old["url"]).status_code == 404
    assert Attachment.objects.filter(pk=bobs.pk).exists(), "only the uploader's own are swept"
    assert len(stored_files(media)) == 2

    monkeypatch.setattr(files, "UNSENT_MAX", 2)
    upload(as_alice, "second.txt", b"two")
    refused = upload(as_alice, "third.txt", b"three")
    assert refused.status_code == 429 and error(refused)["code"] == "too_many_unsent"


def test_an_edited_questions_new_version_keeps_its_files_and_they_go_with_the_conversation(
    as_alice: httpx.Client, alice: User, chat_model: LanguageModel, media: Path
) -> None:
    body = upload(as_alice, "plan.md", b"# the plan").json()
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    reply = actions.do_send(alice, conversation.pk, "read this", [body["id"]])
    Message.objects.filter(pk=reply.pk).update(status=Message.Status.COMPLETE)
    first = Message.objects.get(conversation=conversation, role="user")
    edited = actions.do_edit(alice, conversation.pk, first.pk, "read this, briefly")
    question = Message.objects.get(pk=edited.parent_id)
    assert [a.name for a in question.attachments.all()] == ["plan.md"]
    assert [a.name for a in first.attachments.all()] == ["plan.md"], "the old version keeps its file"
    assert len(stored_files(media)) == 1  # one stored file, held by both versions
    turn = services.generation_input(edited.pk)
    assert turn is not None
    assert turn.messages[-1]["content"] == '<file name="plan.md">\n# the plan\n</file>\n\nread this, briefly'

    Attachment.objects.filter(message=first).delete()
    assert len(stored_files(media)) == 1, "still held by the new version"
    assert as_alice.delete(f"/api/conversations/{conversation.pk}/").status_code == 204
    assert stored_files(media) == []


def test_an_export_names_the_files_and_a_share_links_none(
    as_alice: httpx.Client, alice: User, chat_model: LanguageModel
) -> None:
    body = upload(as_alice, "budget.csv", b"item,cost\ntea,3\n").json()
    conversation = Conversation.objects.create(owner=alice, model=chat_model)
    actions.do_send(alice, conversation.pk, "add it up", [body["id"]])
    exported = export.export_data(conversation)
    assert exported["messages"][0]["attachments"] == ["budget.csv"]
    shared = export.snapshot(conversation)
    assert shared["messages"][0]["attachments"] == ["budget.csv"]
    assert "/files/" not in str(shared)
