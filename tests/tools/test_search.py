"""Web search against a fake SearXNG and a fake Brave API on loopback: results, caps, and failures as tool errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from core.netguard import Guard
from tests.tools import fake_search
from tests.tools.servers import serve
from tools.results import ToolError
from tools.search import Brave, SearXNG, configured_engine, format_results


@pytest.fixture(scope="module")
def engine_url() -> Iterator[str]:
    with serve(fake_search.app) as base:
        yield base


async def test_searxng_results_come_back_with_title_url_and_snippet(engine_url: str) -> None:
    sources = await SearXNG(engine_url + "/").search("otters", 5)
    assert [(s.title, s.url, s.snippet) for s in sources] == [
        (f"Result {n} for otters", f"https://example.org/otters/{n}", f"Snippet {n}") for n in (1, 2, 3)
    ]
    assert fake_search.requests[-1]["params"] == {"q": "otters", "format": "json"}
    assert format_results(sources).startswith("[1] Result 1 for otters\nhttps://example.org/otters/1\nSnippet 1")


async def test_the_number_of_results_is_capped(engine_url: str) -> None:
    assert len(await SearXNG(engine_url).search("otters", 2)) == 2


@pytest.mark.parametrize(
    ("query", "message"),
    [("fail", "answered HTTP 500"), ("garbage", "not JSON")],
)
async def test_an_engine_failure_is_a_tool_error(engine_url: str, query: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        await SearXNG(engine_url).search(query, 5)


async def test_an_engine_that_does_not_answer_in_time_is_a_tool_error(engine_url: str, settings: Any) -> None:
    settings.TOOLS_SEARCH_TIMEOUT = 0.3
    with pytest.raises(ToolError, match="did not answer within"):
        await SearXNG(engine_url).search("hang", 5)


async def test_an_unreachable_engine_is_a_tool_error(engine_url: str) -> None:
    with serve(fake_search.app) as gone:
        pass
    with pytest.raises(ToolError, match="could not be reached"):
        await SearXNG(gone).search("otters", 5)


async def test_a_hosted_engine_is_refused_on_an_internal_address(engine_url: str) -> None:
    with pytest.raises(ToolError, match="refused"):
        await Brave("brave-secret-key", url=engine_url + "/res/v1/web/search").search("otters", 5)


async def test_brave_sends_its_key_in_its_header_and_never_shows_it(engine_url: str, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    guard = Guard(allow_internal=True)
    url = engine_url + "/res/v1/web/search"
    sources = await Brave("brave-secret-key", guard=guard, url=url).search("otters", 2)
    assert [s.url for s in sources] == ["https://example.org/otters/1", "https://example.org/otters/2"]
    assert fake_search.requests[-1]["params"] == {"q": "otters", "count": "2"}
    with pytest.raises(ToolError) as failed:
        await Brave("wrong-secret-key", guard=guard, url=url).search("otters", 2)
    assert "wrong-secret-key" not in str(failed.value)
    assert "secret-key" not in caplog.text


def test_search_is_offered_only_once_an_engine_is_set_up(settings: Any) -> None:
    settings.SEARXNG_URL = None
    assert configured_engine() is None
    settings.SEARXNG_URL = "http://searx.internal:8080"
    engine = configured_engine()
    assert isinstance(engine, SearXNG) and engine.base_url == "http://searx.internal:8080"
    settings.TOOLS_SEARCH_ENGINE = "brave"
    settings.BRAVE_SEARCH_API_KEY = ""
    assert configured_engine() is None
    settings.BRAVE_SEARCH_API_KEY = "k"
    assert isinstance(configured_engine(), Brave)
