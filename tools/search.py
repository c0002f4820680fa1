"""Web search: one interface, engines behind it (SearXNG's JSON API by default; Brave or Tavily with a key).

The engine is the admin's choice (tools.site: the admin page's, else TOOLS_SEARCH_ENGINE). SEARXNG_URL is
the admin's own instance, often on the internal network, so it may be on an internal address; the hosted
engines are reached under the default guard. API keys travel only in the engine's own header or body,
never in a log or an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from django.conf import settings

from core.netguard import Guard, Refused
from tools import http, site
from tools.results import Source, ToolError


class SearchEngine(Protocol):
    name: str

    async def search(self, query: str, count: int) -> list[Source]: ...


def _sources(items: Any, title: str, url: str, snippet: str, count: int) -> list[Source]:
    if not isinstance(items, list):
        raise ToolError("the search engine answered something that is not a list of results")
    found = []
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get(url), str) and item[url].startswith(("http:", "https:")):
            found.append(Source(str(item.get(title) or item[url]), item[url], str(item.get(snippet) or "")))
        if len(found) == count:
            break
    return found


async def _json(guard: Guard, method: str, url: str, **kwargs: Any) -> Any:
    """The engine's JSON answer; every failure a ToolError naming the engine's host, never the key."""
    try:
        host = http.check_url(url).host
    except Refused as exc:
        raise ToolError(f"the search engine's address is refused: {exc}") from None
    async with http.within(settings.TOOLS_SEARCH_TIMEOUT, f"the search engine at {host}"), http.client(guard) as client:
        response = await client.request(method, url, **kwargs)
    if response.status_code != 200:
        raise ToolError(f"the search engine at {host} answered HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise ToolError(f"the search engine at {host} answered something that is not JSON") from None


class SearXNG:
    name = "searxng"

    def __init__(self, base_url: str, guard: Guard | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.guard = guard or Guard(allow_internal=True)

    async def search(self, query: str, count: int) -> list[Source]:
        answer = await _json(self.guard, "GET", f"{self.base_url}/search", params={"q": query, "format": "json"})
        if not isinstance(answer, Mapping):
            raise ToolError("the search engine answered something that is not a SearXNG result")
        return _sources(answer.get("results"), "title", "url", "content", count)


class _Hosted:
    """A hosted engine: public (under the default guard), with an API key; `url` may be another endpoint of it."""

    url: str

    def __init__(self, api_key: str, guard: Guard | None = None, url: str | None = None) -> None:
        self._key = api_key
        self.guard = guard or Guard()
        self.url = url or self.url


class Brave(_Hosted):
    name = "brave"
    url = "https://api.search.brave.com/res/v1/web/search"

    async def search(self, query: str, count: int) -> list[Source]:
        headers = {"X-Subscription-Token": self._key, "Accept": "application/json"}
        answer = await _json(self.guard, "GET", self.url, params={"q": query, "count": count}, headers=headers)
        web = answer.get("web") if isinstance(answer, Mapping) else None
        return _sources(web.get("results") if isinstance(web, Mapping) else [], "title", "url", "description", count)


class Tavily(_Hosted):
    name = "tavily"
    url = "https://api.tavily.com/search"

    async def search(self, query: str, count: int) -> list[Source]:
        body = {"query": query, "max_results": count}
        answer = await _json(self.guard, "POST", self.url, json=body, headers={"Authorization": f"Bearer {self._key}"})
        results = answer.get("results") if isinstance(answer, Mapping) else None
        return _sources(results, "title", "url", "content", count)


def configured_engine() -> SearchEngine | None:
    """The engine the settings name, or None when it is not set up (web search is then not offered)."""
    engine = site.current().search_engine
    if engine == "brave":
        return Brave(settings.BRAVE_SEARCH_API_KEY) if settings.BRAVE_SEARCH_API_KEY else None
    if engine == "tavily":
        return Tavily(settings.TAVILY_API_KEY) if settings.TAVILY_API_KEY else None
    return SearXNG(settings.SEARXNG_URL) if settings.SEARXNG_URL else None


def format_results(sources: list[Source]) -> str:
    """The results as the model reads them: numbered, so an answer can cite [1], [2]."""
    if not sources:
        return "No results."
    return "\n\n".join(f"[{n}] {s.title}\n{s.url}\n{s.snippet}".rstrip() for n, s in enumerate(sources, 1))
