"""The profile's ready-to-paste snippets, rendered from their templates."""

from __future__ import annotations

import json
from pathlib import Path

from accounts import services

EXPECTED = json.loads((Path(__file__).parent / "snippets.json").read_text())


def test_it_renders_every_snippet_exactly_for_a_key_and_a_model_with_quotes_and_markup() -> None:
    # Quotes are JSON-escaped and nothing is HTML-escaped: the text is code to paste, not markup.
    got = services.snippets(EXPECTED["base_url"], EXPECTED["model"], EXPECTED["api_key"])
    assert list(got) == list(services.SNIPPET_LABELS)
    assert got == EXPECTED["snippets"]


def test_it_shows_a_placeholder_where_no_key_was_just_made() -> None:
    got = services.snippets("http://host:8000/v1", "acme/chat-1")
    assert all(services.KEY_PLACEHOLDER in code for code in got.values())
    assert (
        got["python"].splitlines()[2] == 'client = OpenAI(base_url="http://host:8000/v1", api_key="sk-...your-key...")'
    )
