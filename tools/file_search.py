"""The `file_search` tool: the passages of a user's vector stores (knowledge bases) best matching the model's
query, numbered for citing ([1], [2], ...: numbers go on across the calls of one request, so every number
names one passage), each with its file as a Source (file id, name, score, attributes, that number)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.db import db
from knowledge.filters import FilterError
from knowledge.models import VectorStore
from knowledge.search import MAX_QUERY_CHARS, Hit, SearchRefused, owned_store, search_stores
from tools.results import Source, ToolError, ToolResult, ToolSpec
from usage.tokens import estimate_tokens

FILE_SEARCH = ToolSpec(
    name="file_search",
    description="Search the user's knowledge bases (their uploaded files). Returns numbered passages with the file "
    "they come from; cite them as [1], [2].",
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to look for in the files"}},
        "required": ["query"],
    },
    kind="file_search",
)
FILE_SEARCH_RESULTS = 10


@dataclass(frozen=True)
class FileSearch:
    """What a request's file_search tool searches: the user's stores, how many passages a call gets, which
    files (OpenAI's attribute filters), the least score kept, and at most how many tokens of passages a call
    returns (the best one always; None: no bound), so a small model's context holds them."""

    stores: tuple[str, ...]
    max_results: int = FILE_SEARCH_RESULTS
    filters: Mapping[str, Any] | None = None
    score_threshold: float = 0.0
    max_tokens: int | None = None


def check_stores(user: Any, store_ids: tuple[str, ...]) -> None:
    """VectorStore.DoesNotExist unless every store is the user's."""
    for store_id in store_ids:
        owned_store(user, store_id)


async def run(user: Any, choice: FileSearch, arguments: dict[str, Any], first: int) -> ToolResult:
    """One call's passages, numbered from `first`."""
    query = arguments.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ToolError("file_search needs a non-empty 'query' string")
    filters = dict(choice.filters) if choice.filters is not None else None
    try:
        hits = await db(
            lambda: search_stores(
                user,
                choice.stores,
                query[:MAX_QUERY_CHARS],
                max_results=choice.max_results,
                filters=filters,
                score_threshold=choice.score_threshold,
            )
        )
    except VectorStore.DoesNotExist:
        raise ToolError("a knowledge base of this request no longer exists") from None
    except (FilterError, SearchRefused) as exc:
        raise ToolError(f"file_search cannot search: {exc}") from None
    hits = _within(hits, choice.max_tokens)
    if not hits:
        return ToolResult(text="No passage of the files matches.")
    return ToolResult(
        text="\n\n".join(_passage(number, hit) for number, hit in enumerate(hits, first)),
        sources=[_source(number, hit) for number, hit in enumerate(hits, first)],
    )


def _within(hits: list[Hit], max_tokens: int | None) -> list[Hit]:
    if max_tokens is None:
        return hits
    kept: list[Hit] = []
    for hit in hits:
        max_tokens -= estimate_tokens(hit.text)
        if kept and max_tokens < 0:
            break
        kept.append(hit)
    return kept


def _passage(number: int, hit: Hit) -> str:
    where = f", page {hit.page}" if hit.page else ""
    return f"[{number}] {hit.filename}{where}\n{hit.text}"


def _source(number: int, hit: Hit) -> Source:
    return Source(
        title=hit.filename,
        url="",
        snippet=hit.text,
        file_id=hit.file_id,
        score=hit.score,
        attributes=hit.attributes,
        number=number,
        page=hit.page,
        section=hit.section,
    )
