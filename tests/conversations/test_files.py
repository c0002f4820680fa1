"""What an attached file is (sniffed from its bytes) and the text a model reads from it."""

from __future__ import annotations

import io
import zipfile

import pytest

from conversations import files
from conversations.models import Attachment
from tests import sample_files


def test_images_are_known_by_their_magic_numbers_whatever_their_name() -> None:
    sniffed = files.sniff("screenshot", sample_files.png())
    assert (sniffed.kind, sniffed.content_type, sniffed.text) == (Attachment.Kind.IMAGE, "image/png", "")
    assert files.sniff("IMG_0001.PNG", sample_files.png()).content_type == "image/png"


def test_a_pdf_becomes_its_text() -> None:
    sniffed = files.sniff("report.pdf", sample_files.pdf("Quarterly figures", "Revenue (net) rose 12%"))
    assert sniffed.kind == Attachment.Kind.DOCUMENT and sniffed.content_type == files.PDF
    assert "Quarterly figures" in sniffed.text and "Revenue (net) rose 12%" in sniffed.text


def test_a_word_document_becomes_its_paragraphs_and_tables() -> None:
    data = sample_files.docx("Minutes of the meeting", "Decided: ship it", table=[["Owner", "Task"], ["Ana", "Docs"]])
    sniffed = files.sniff("minutes.docx", data)
    assert sniffed.content_type == files.DOCX
    assert sniffed.text.splitlines()[:2] == ["Minutes of the meeting", "Decided: ship it"]
    assert "Ana\tDocs" in sniffed.text


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("notes.md", "# Title\n\n- item"),
        ("data.csv", "a,b\n1,2\n"),
        ("main.py", "def f():\n    return 'é'\n"),
        ("no extension", "plain words"),
        ("page.html", "<script>alert(1)</script>"),
        ("icon.svg", '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    ],
)
def test_text_files_of_any_name_are_read_as_text(name: str, text: str) -> None:
    sniffed = files.sniff(name, text.encode())
    assert (sniffed.kind, sniffed.content_type, sniffed.text) == (Attachment.Kind.DOCUMENT, "text/plain", text)


def test_a_byte_order_mark_and_windows_line_ends_are_dropped() -> None:
    assert files.sniff("a.txt", b"\xef\xbb\xbfone\r\ntwo").text == "one\ntwo"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("photo.png", b"MZ\x90\x00\x03" + bytes(200)),  # a Windows executable calling itself a picture
        ("photo.jpg", sample_files.png()),  # a PNG is no JPEG
        ("report.pdf", b"just some text"),
        ("letter.docx", b"PK\x03\x04not really a zip"),
    ],
)
def test_a_name_claiming_another_format_is_refused(name: str, data: bytes) -> None:
    with pytest.raises(files.FileRefused) as refused:
        files.sniff(name, data)
    assert refused.value.status == 415 and refused.value.code == "disguised_file"
    assert "not what its name says" in str(refused.value)


@pytest.mark.parametrize(
    "data",
    [
        b"MZ\x90\x00\x03" + bytes(200),  # an executable
        b"\x00\x01\x02\xff\xfe" * 40,  # binary of no known format
        b"text with a NUL \x00 inside",
        "latin-1 caf\xe9".encode("latin-1"),  # not UTF-8
    ],
)
def test_binary_and_undecodable_content_is_refused(data: bytes) -> None:
    with pytest.raises(files.FileRefused) as refused:
        files.sniff("upload", data)
    assert refused.value.status == 415


def test_a_plain_zip_is_not_a_word_document() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(files.FileRefused) as refused:
        files.sniff("archive.zip", out.getvalue())
    assert "application/zip" in str(refused.value)


def test_empty_damaged_and_textless_documents_say_why() -> None:
    with pytest.raises(files.FileRefused, match="empty"):
        files.sniff("a.txt", b"")
    with pytest.raises(files.FileRefused, match="could not be read") as damaged:
        files.sniff("a.pdf", b"%PDF-1.7\n garbage without structure")
    assert damaged.value.status == 422
    with pytest.raises(files.FileRefused, match="no text"):
        files.sniff("scan.pdf", sample_files.pdf())


def test_a_word_document_that_unpacks_too_far_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "DOCX_MAX_UNPACKED", 1000)
    with pytest.raises(files.FileRefused, match="too much data"):
        files.sniff("big.docx", sample_files.docx("x" * 5000))


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\cv.pdf", "cv.pdf"),
        ("bell\x07\nname.txt", "bellname.txt"),
        ("", "file"),
        ("..", "file"),
        ("a" * 300 + ".txt", "a" * 251 + ".txt"),
    ],
)
def test_names_lose_folders_and_control_characters(given: str, shown: str) -> None:
    assert files.clean_name(given) == shown


def test_documents_go_first_then_the_text_then_images_as_data_urls() -> None:
    doc = Attachment(name='a "b".md', kind=Attachment.Kind.DOCUMENT, text="# notes")
    content = files.upstream_content("Summarise", [doc], vision=False)
    assert content == "<file name=\"a 'b'.md\">\n# notes\n</file>\n\nSummarise"


def test_images_become_a_note_for_a_model_without_vision() -> None:
    image = Attachment(name="cat.png", kind=Attachment.Kind.IMAGE, content_type="image/png")
    content = files.upstream_content("What is this?", [image], vision=False)
    assert content == "[An image, cat.png, is not shown: this model does not take images.]\n\nWhat is this?"
