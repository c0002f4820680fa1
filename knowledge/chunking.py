"""Documents cut into passages: token-aware, overlapping, never across a heading's section or a page.

Pure functions over a document's text. A chunk is a span of that text (`text[start:end]`), so its
offsets point back into the document; its tokens are the project's one estimate (usage.tokens).

    chunks = chunk_document(Document(text, pages=(0, 1830)), max_tokens=800, overlap_tokens=400)
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from usage.tokens import BYTES_PER_TOKEN, estimate_tokens

# OpenAI's "auto" chunking strategy, and its bounds for a "static" one.
DEFAULT_MAX_TOKENS = 800
DEFAULT_OVERLAP_TOKENS = 400
MIN_MAX_TOKENS = 100
MAX_MAX_TOKENS = 4096

HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
WHITESPACE = re.compile(r"\s+")


class ChunkingError(ValueError):
    """A chunking strategy out of bounds."""


@dataclass(frozen=True)
class Document:
    """A document's text; `pages` the offsets where its pages start (empty when it has no pages)."""

    text: str
    pages: Sequence[int] = field(default_factory=tuple)

    def page_at(self, offset: int) -> int | None:
        if not self.pages:
            return None
        return max(bisect.bisect_right(self.pages, offset), 1)


@dataclass(frozen=True)
class ChunkSpan:
    start: int
    end: int
    text: str
    tokens: int
    section: str
    page: int | None


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    group: tuple[str, int | None]  # (section, page): a chunk never mixes two


def check_strategy(max_tokens: int, overlap_tokens: int) -> None:
    """OpenAI's rules for a static strategy: 100..4096 tokens, the overlap at most half of them."""
    if not MIN_MAX_TOKENS <= max_tokens <= MAX_MAX_TOKENS:
        raise ChunkingError(f"max_chunk_size_tokens must be between {MIN_MAX_TOKENS} and {MAX_MAX_TOKENS}")
    if not 0 <= overlap_tokens <= max_tokens // 2:
        raise ChunkingError("chunk_overlap_tokens must be between 0 and half of max_chunk_size_tokens")


def _paragraphs(text: str) -> Iterator[tuple[int, int, str | None, int]]:
    """(start, end, heading or None, level) for each run of non-blank lines; a heading line is its own run."""
    start: int | None = None
    end = offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        heading = HEADING.match(stripped)
        if (not stripped or heading) and start is not None:
            yield start, end, None, 0
            start = None
        if heading:
            yield offset, offset + len(line.rstrip()), heading.group(2).strip(), len(heading.group(1))
        elif stripped:
            if start is None:
                start = offset + len(line) - len(line.lstrip())
            end = offset + len(line.rstrip())
        offset += len(line)
    if start is not None:
        yield start, end, None, 0


def _split_long(start: int, end: int, text: str, max_tokens: int) -> Iterator[tuple[int, int]]:
    """A span over max_tokens cut at whitespace (or anywhere, for a run with none) into spans within it."""
    while estimate_tokens(text[start:end]) > max_tokens:
        # Characters take one to four bytes: shrink the window until it fits.
        cut = start + max_tokens * BYTES_PER_TOKEN
        while estimate_tokens(text[start:cut]) > max_tokens:
            cut = start + (cut - start) * 3 // 4
        space = text.rfind(" ", start + 1, cut + 1)
        newline = text.rfind("\n", start + 1, cut + 1)
        cut = max(space, newline) if max(space, newline) > start else cut
        yield start, cut
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        yield start, end


def _pieces(document: Document, max_tokens: int) -> list[_Piece]:
    text = document.text
    headings: list[str] = []
    pieces: list[_Piece] = []
    for start, end, heading, level in _paragraphs(text):
        if heading is not None:
            headings = [*headings[: level - 1], heading]
        group = (" > ".join(headings), document.page_at(start))
        pieces.extend(_Piece(a, b, group) for a, b in _split_long(start, end, text, max_tokens))
    return pieces


def chunk_document(
    document: Document, max_tokens: int = DEFAULT_MAX_TOKENS, overlap_tokens: int = DEFAULT_OVERLAP_TOKENS
) -> list[ChunkSpan]:
    """The document's chunks in order: each at most max_tokens, sharing up to overlap_tokens with the one before
    when both are in the same section and page."""
    check_strategy(max_tokens, overlap_tokens)
    text = document.text
    chunks: list[ChunkSpan] = []
    current: list[_Piece] = []

    def tokens(span: list[_Piece]) -> int:
        return estimate_tokens(text[span[0].start : span[-1].end])

    def close() -> None:
        chunk_text = text[current[0].start : current[-1].end]
        section, page = current[0].group
        chunks.append(ChunkSpan(current[0].start, current[-1].end, chunk_text, tokens(current), section, page))

    for piece in _pieces(document, max_tokens):
        if current and (piece.group != current[0].group or tokens([*current, piece]) > max_tokens):
            close()
            same_group = piece.group == current[0].group
            current = _overlap(current, overlap_tokens, tokens) if same_group else []
            while current and tokens([*current, piece]) > max_tokens:
                current.pop(0)
        current.append(piece)
    if current:
        close()
    return chunks


def _overlap(pieces: list[_Piece], overlap_tokens: int, count: Callable[[list[_Piece]], int]) -> list[_Piece]:
    """The longest tail of pieces within overlap_tokens."""
    tail: list[_Piece] = []
    for piece in reversed(pieces):
        if count([piece, *tail]) > overlap_tokens:
            break
        tail.insert(0, piece)
    return tail
