"""A stored file's text as a Document for chunking: Markdown and plain text as they are, HTML with its
headings kept as Markdown headings, PDF page by page (the offsets where pages start).

What a file is comes from its bytes (filetype's magic numbers, else strict UTF-8 without NUL); the name
only tells HTML from other text. ExtractionFailed carries a reason fit to show as the file's last error.
"""

from __future__ import annotations

import io
from html.parser import HTMLParser

import filetype

from knowledge.chunking import Document

PDF = "application/pdf"
HTML = "text/html"
TEXT = "text/plain"
SNIFF_BYTES = 8192
HTML_SUFFIXES = (".html", ".htm", ".xhtml")


class ExtractionFailed(Exception):
    """A file whose text cannot be read; `code` names the kind, the message says why."""

    def __init__(self, message: str, code: str = "unsupported_file") -> None:
        super().__init__(message)
        self.code = code


def content_type(filename: str, data: bytes) -> str:
    """What the bytes are: PDF, HTML or text; ExtractionFailed for anything else."""
    if not data:
        raise ExtractionFailed("The file is empty.", "empty_file")
    guess = filetype.guess(data[:SNIFF_BYTES])
    if guess is not None:
        if guess.mime == PDF:
            return PDF
        raise ExtractionFailed(f"Files of type {guess.mime} cannot be searched; use PDF, HTML, Markdown or text.")
    if _text(data) is None:
        raise ExtractionFailed("Binary data of no known format cannot be searched.")
    return HTML if filename.lower().endswith(HTML_SUFFIXES) else TEXT


def extract(kind: str, data: bytes) -> Document:
    if kind == PDF:
        return _pdf(data)
    text = _text(data)
    if text is None:
        raise ExtractionFailed("The file is not UTF-8 text.", "unreadable_file")
    document = Document(_html_to_markdown(text) if kind == HTML else text)
    if not document.text.strip():
        raise ExtractionFailed("The file has no text.", "no_text")
    return document


def _text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text.replace("\r\n", "\n")


def _pdf(data: bytes) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    parts: list[str] = []
    starts: list[int] = []
    offset = 0
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionFailed("This PDF is protected by a password.", "encrypted")
        for page in reader.pages:
            text = (page.extract_text() or "").replace("\x00", "").strip() + "\n\n"
            starts.append(offset)
            parts.append(text)
            offset += len(text)
    except ExtractionFailed:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise ExtractionFailed("The PDF could not be read; it may be damaged.", "unreadable_file") from None
    document = Document("".join(parts), tuple(starts))
    if not document.text.strip():
        raise ExtractionFailed("This PDF has no text to read (is it a scan?).", "no_text")
    return document


class _Markdown(HTMLParser):
    """HTML's text with h1-h6 as Markdown headings and block elements as paragraphs; scripts and styles dropped."""

    BLOCKS = {"p", "div", "li", "tr", "br", "section", "article", "blockquote", "pre", "table", "ul", "ol"}
    SKIPPED = {"script", "style", "template", "noscript", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self.skipping += 1
        elif len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in self.BLOCKS:
            self.out.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self.skipping = max(self.skipping - 1, 0)
        elif (len(tag) == 2 and tag[0] == "h" and tag[1] in "123456") or tag in self.BLOCKS:
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(" ".join(data.split()) if data.strip() else " ")


def _html_to_markdown(html: str) -> str:
    parser = _Markdown()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.out).split("\n")]
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip() + "\n"
