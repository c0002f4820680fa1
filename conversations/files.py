"""Files attached in the chat: what they are (sniffed from their bytes), their text, their storage.

What a file is comes from its content alone: magic numbers read by the `filetype` library (images,
PDF, .docx and the binary formats we refuse), and otherwise strict UTF-8 without NUL characters for
text (plain text, Markdown, CSV, code, also HTML or SVG, which are only ever read as text). The name
is trusted for nothing but display, and a name claiming a format the content is not is refused.

    upload = files.store(user, "report.pdf", data)     # raises FileRefused with an HTTP status
    content = files.upstream_content(text, attachments, vision=True)
"""

from __future__ import annotations

import base64
import io
import re
import unicodedata
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import filetype
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models.signals import post_delete

from accounts.models import User
from catalogue.models import LanguageModel
from conversations.models import Attachment, Message
from core.clock import clock
from usage.tokens import MESSAGE_OVERHEAD_TOKENS, NON_TEXT_PART_TOKENS, estimate_tokens

IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# Formats a name may claim only if the content is one: "photo.png" holding anything else is refused.
CLAIMS = {
    "png": {"image/png"},
    "jpg": {"image/jpeg"},
    "jpeg": {"image/jpeg"},
    "gif": {"image/gif"},
    "webp": {"image/webp"},
    "pdf": {PDF},
    "docx": {DOCX},
}
# A .docx is a zip: its parts may expand to at most this much (a zip bomb stops here).
DOCX_MAX_UNPACKED = 100 * 1024 * 1024
# Uploads never sent go after a day; meanwhile one user may have at most UNSENT_MAX waiting.
UNSENT_FOR = timedelta(days=1)
UNSENT_MAX = 50
SNIFF_BYTES = 8192
# In place of a document too long for the model's context, which is searched instead.
RETRIEVED_NOTE = "(Too long to read whole: the passages of it that bear on the question are given with it.)"
RETRIEVED_NOTE_TOKENS = 40


class FileRefused(Exception):
    """An upload refused, with a message fit to show the person and the HTTP status that says why."""

    def __init__(self, message: str, status: int = 415, code: str = "unsupported_file") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Sniffed:
    kind: str  # Attachment.Kind
    content_type: str
    text: str = ""


def clean_name(name: str) -> str:
    """A file name fit to show and to offer back: no folders, no control characters, at most 255 characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 254 - len(ext)] + dot + ext) if dot and len(ext) < 20 else name[:255]
    return name or "file"


def _extension(name: str) -> str:
    return name.rpartition(".")[2].lower() if "." in name else ""


def sniff(name: str, data: bytes) -> Sniffed:
    """What the bytes are, and a document's text; FileRefused for anything we do not take."""
    if not data:
        raise FileRefused("The file is empty.", 422, "empty_file")
    guess = filetype.guess(data[:SNIFF_BYTES])
    mime = guess.mime if guess is not None else None
    if mime == "application/zip" and _is_docx(data):
        mime = DOCX
    claimed = CLAIMS.get(_extension(name))
    if claimed is not None and mime not in claimed:
        raise FileRefused(
            f"“{clean_name(name)}” is not what its name says: its content is "
            f"{_describe(mime)}, not a .{_extension(name)} file.",
            415,
            "disguised_file",
        )
    if mime in IMAGE_TYPES:
        return Sniffed(Attachment.Kind.IMAGE, mime)
    if mime == PDF:
        return Sniffed(Attachment.Kind.DOCUMENT, PDF, _pdf_text(data))
    if mime == DOCX:
        return Sniffed(Attachment.Kind.DOCUMENT, DOCX, _docx_text(data))
    if mime is None:
        text = _plain_text(data)
        if text is not None:
            return Sniffed(Attachment.Kind.DOCUMENT, "text/plain", text)
    raise FileRefused(
        f"“{clean_name(name)}” is {_describe(mime)}, which the chat does not take. Attach images (PNG, JPEG, "
        "GIF, WebP), PDF, Word (.docx) or text files (plain text, Markdown, CSV, code).",
    )


def _describe(mime: str | None) -> str:
    return f"of type {mime}" if mime else "binary data of no known format"


def _plain_text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if "\x00" in text:
        return None
    return text.replace("\r\n", "\n")


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, ValueError):
        return False


def _unreadable(what: str) -> FileRefused:
    return FileRefused(f"The {what} could not be read; it may be damaged.", 422, "unreadable_file")


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileRefused("This PDF is protected by a password; attach an unprotected copy.", 422, "encrypted")
        text = "\n\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()
    except FileRefused:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise _unreadable("PDF") from None
    if not text:
        raise FileRefused("This PDF has no text to read (is it a scan?).", 422, "no_text")
    return text.replace("\x00", "")


def _docx_text(data: bytes) -> str:
    import docx

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > DOCX_MAX_UNPACKED:
                raise FileRefused("This Word document unpacks to too much data.", 413, "too_large")
        document = docx.Document(io.BytesIO(data))
        parts = [p.text for p in document.paragraphs]
        for table in document.tables:
            for row in table.rows:
                parts.append("\t".join(cell.text for cell in row.cells))
    except FileRefused:
        raise
    except Exception:  # python-docx raises many kinds (KeyError, lxml errors) on a damaged file
        raise _unreadable("Word document") from None
    text = "\n".join(parts).strip()
    if not text:
        raise FileRefused("This Word document has no text.", 422, "no_text")
    return text.replace("\x00", "")


def check_size(size: int) -> None:
    limit = settings.ATTACHMENT_MAX_BYTES
    if size > limit:
        raise FileRefused(f"The file is too large: at most {_mb(limit)} per file.", 413, "too_large")


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


def sweep_unsent(user: User) -> int:
    """Deletes the user's uploads left unsent for UNSENT_FOR (their files too); returns how many."""
    stale = Attachment.objects.filter(owner=user, message__isnull=True, created_at__lt=clock().now() - UNSENT_FOR)
    return stale.delete()[0]


def store(user: User, name: str, data: bytes) -> Attachment:
    """Sniffs, reads and stores an upload as the user's (not yet attached to any message)."""
    check_size(len(data))
    sweep_unsent(user)
    if Attachment.objects.filter(owner=user, message__isnull=True).count() >= UNSENT_MAX:
        raise FileRefused(
            f"{UNSENT_MAX} files are waiting to be sent already; send or remove some first.", 429, "too_many_unsent"
        )
    sniffed = sniff(name, data)
    if len(sniffed.text) > settings.ATTACHMENT_MAX_TEXT_CHARS:
        raise FileRefused(
            f"The file's text is too long (at most {settings.ATTACHMENT_MAX_TEXT_CHARS:,} characters).",
            413,
            "too_large",
        )
    tokens = estimate_tokens(sniffed.text) if sniffed.kind == Attachment.Kind.DOCUMENT else NON_TEXT_PART_TOKENS
    attachment = Attachment(
        owner=user,
        name=clean_name(name),
        size=len(data),
        kind=sniffed.kind,
        content_type=sniffed.content_type,
        text=sniffed.text,
        tokens=tokens,
        created_at=clock().now(),
    )
    # A random stored name: the person's name for it never reaches the storage's paths.
    suffix = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp"}
    attachment.file.save(uuid.uuid4().hex + suffix.get(sniffed.content_type, ".bin"), ContentFile(data), save=False)
    try:
        attachment.save()
    except Exception:
        attachment.file.storage.delete(attachment.file.name or "")
        raise
    return attachment


def owned(user: User, attachment_id: int) -> Attachment | None:
    return Attachment.objects.filter(pk=attachment_id, owner=user).first()


def read(attachment: Attachment) -> bytes:
    with attachment.file.storage.open(attachment.file.name or "", "rb") as handle:
        data: bytes = handle.read()
    return data


def data_url(attachment: Attachment) -> str:
    return f"data:{attachment.content_type};base64,{base64.b64encode(read(attachment)).decode('ascii')}"


def document_block(attachment: Attachment) -> str:
    name = attachment.name.replace('"', "'")
    if attachment.retrieved:
        return f'<file name="{name}">{RETRIEVED_NOTE}</file>'
    return f'<file name="{name}">\n{attachment.text}\n</file>'


def upstream_content(text: str, attachments: list[Attachment], *, vision: bool) -> str | list[dict[str, Any]]:
    """A user message as the model reads it: documents' text first, then what was typed, then images
    as data-URL `image_url` parts (for a model without vision, a note in their place)."""
    blocks = [document_block(a) for a in attachments if a.kind == Attachment.Kind.DOCUMENT]
    images = [a for a in attachments if a.kind == Attachment.Kind.IMAGE]
    if images and not vision:
        blocks.extend(f"[An image, {a.name}, is not shown: this model does not take images.]" for a in images)
        images = []
    joined = "\n\n".join([*blocks, text] if text else blocks)
    if not images:
        return joined
    parts: list[dict[str, Any]] = [{"type": "text", "text": joined}] if joined else []
    parts.extend({"type": "image_url", "image_url": {"url": data_url(a)}} for a in images)
    return parts


def copy(source: Message, target: Message) -> None:
    """Gives an edited question's new version the files of the old one (the stored files are shared)."""
    for attachment in source.attachments.all():
        attachment.pk = None
        attachment.message = target
        attachment.save()


def _delete_stored_file(sender: Any, instance: Attachment, **kwargs: Any) -> None:
    """A deleted attachment's file leaves the storage too, once the deletion is committed and no other
    version of a message still holds it."""
    name = instance.file.name
    if name:
        storage = instance.file.storage

        def delete() -> None:
            if not Attachment.objects.filter(file=name).exists():
                storage.delete(name)

        transaction.on_commit(delete)


def connect_signals() -> None:
    post_delete.connect(_delete_stored_file, sender=Attachment, dispatch_uid="attachment-file-delete")


def prompt_room(model: LanguageModel | None) -> tuple[int, int]:
    """The model's context length and the tokens a prompt may take of it (the rest is kept for the reply)."""
    context_length = model.context_length if model else 4096
    reserve = min(model.max_output_tokens if model else 1024, context_length // 2)
    return context_length, max(context_length - reserve, 0)


def claim(
    user: User, message: Message, ids: Sequence[int], model: LanguageModel | None, system_prompt: str
) -> list[Attachment]:
    """Ties the user's unsent uploads `ids` to their new message, if the model can read them; returns the
    documents too long for its context together, to be searched instead of read whole (none if all fit)."""
    unique = list(dict.fromkeys(ids))
    if not unique:
        return []
    if len(unique) > settings.ATTACHMENTS_PER_MESSAGE:
        raise FileRefused(f"At most {settings.ATTACHMENTS_PER_MESSAGE} files go with one message.", 400, "too_many")
    found = list(
        Attachment.objects.select_for_update().filter(pk__in=unique, owner=user, message__isnull=True).order_by("id")
    )
    if len(found) != len(unique):
        raise FileRefused("An attached file is no longer available; attach it again.", 400, "unknown_attachment")
    name = model.public_id if model else "this model"
    if any(a.kind == Attachment.Kind.IMAGE for a in found) and not (model and model.vision):
        raise FileRefused(
            f"{name} does not take images. Choose a model with vision, or remove the image.", 400, "no_vision"
        )
    text_tokens = estimate_tokens(message.content) + estimate_tokens(system_prompt) + 2 * MESSAGE_OVERHEAD_TOKENS
    documents = [a for a in found if a.kind == Attachment.Kind.DOCUMENT]
    tokens = sum(a.tokens for a in found) + text_tokens
    context_length, room = prompt_room(model)
    retrieved: list[Attachment] = []
    if tokens > room and documents:
        # Searched rather than pasted: the message then carries only a line naming each.
        retrieved = documents
        tokens -= sum(a.tokens for a in documents) - len(documents) * RETRIEVED_NOTE_TOKENS
    if tokens > room:
        raise FileRefused(
            f"The message and its files come to about {tokens:,} tokens, more than {name} reads at once "
            f"({room:,} of its {context_length:,}, the rest kept for the reply). Remove a file or choose "
            "a model with a longer context.",
            400,
            "context_exceeded",
        )
    Attachment.objects.filter(pk__in=unique).update(message=message)
    return retrieved


def first_name(message: Message) -> str:
    first = message.attachments.order_by("id").first()
    return first.name if first else ""
