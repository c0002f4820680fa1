"""Chunking: spans of the document, within the token bound, overlapping, cut at headings and pages."""

from __future__ import annotations

import itertools

import pytest

from knowledge.chunking import ChunkingError, Document, check_strategy, chunk_document
from usage.tokens import estimate_tokens


def words(prefix: str, count: int) -> str:
    return " ".join(f"{prefix}{n}" for n in range(count))


def test_every_chunk_is_a_span_of_the_document_within_the_bound() -> None:
    text = "\n\n".join(words(f"p{n}w", 60) for n in range(20))
    chunks = chunk_document(Document(text), max_tokens=200, overlap_tokens=50)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.tokens == estimate_tokens(chunk.text) <= 200
    assert chunks[0].start == 0 and chunks[-1].end == len(text)


def test_consecutive_chunks_overlap_and_cover_everything() -> None:
    text = "\n\n".join(words(f"p{n}w", 30) for n in range(30))
    chunks = chunk_document(Document(text), max_tokens=300, overlap_tokens=120)
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end, "no overlap"
        assert after.end > before.end, "no progress"
        assert estimate_tokens(text[after.start : before.end]) <= 120


def test_no_overlap_when_asked_for_none() -> None:
    text = "\n\n".join(words(f"p{n}w", 30) for n in range(30))
    chunks = chunk_document(Document(text), max_tokens=300, overlap_tokens=0)
    assert all(after.start >= before.end for before, after in itertools.pairwise(chunks))


def test_a_chunk_never_crosses_a_heading_and_knows_its_section() -> None:
    text = "# Guide\n\nIntro text.\n\n## Install\n\nRun the installer.\n\n## Remove\n\nDelete the folder.\n"
    chunks = chunk_document(Document(text), max_tokens=800, overlap_tokens=0)
    assert [(c.section, c.text) for c in chunks] == [
        ("Guide", "# Guide\n\nIntro text."),
        ("Guide > Install", "## Install\n\nRun the installer."),
        ("Guide > Remove", "## Remove\n\nDelete the folder."),
    ]


def test_a_chunk_never_crosses_a_page_and_knows_its_page() -> None:
    page_one = "First page text.\n\n"
    text = page_one + "Second page text."
    chunks = chunk_document(Document(text, pages=(0, len(page_one))), max_tokens=800, overlap_tokens=0)
    assert [(c.page, c.text) for c in chunks] == [(1, "First page text."), (2, "Second page text.")]


def test_a_paragraph_longer_than_the_bound_is_cut_at_spaces() -> None:
    text = words("w", 2000)
    chunks = chunk_document(Document(text), max_tokens=100, overlap_tokens=0)
    assert all(c.tokens <= 100 for c in chunks)
    assert " ".join(c.text for c in chunks) == text


def test_a_run_without_spaces_is_still_cut_within_the_bound() -> None:
    text = "é" * 5000
    chunks = chunk_document(Document(text), max_tokens=100, overlap_tokens=0)
    assert all(c.tokens <= 100 for c in chunks)
    assert "".join(c.text for c in chunks) == text


def test_an_empty_document_has_no_chunks() -> None:
    assert chunk_document(Document("  \n\n ")) == []


@pytest.mark.parametrize(("max_tokens", "overlap"), [(99, 0), (4097, 0), (200, 101), (200, -1)])
def test_it_refuses_a_strategy_out_of_bounds(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ChunkingError):
        check_strategy(max_tokens, overlap)
