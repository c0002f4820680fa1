"""A fake SearXNG (its JSON API) and a fake Brave Search API on loopback; the query picks the behaviour.

"hang" never answers, "fail" answers 500, "garbage" answers HTML; anything else gets three results.
Each request's query string and headers are recorded.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

requests: list[dict[str, Any]] = []


def _results(query: str) -> list[dict[str, Any]]:
    return [
        {
            "url": f"https://example.org/{query}/{n}",
            "title": f"Result {n} for {query}",
            "content": f"Snippet {n}",
            "engine": "duckduckgo",
            "engines": ["duckduckgo"],
            "parsed_url": ["https", "example.org", f"/{query}/{n}", "", "", ""],
            "positions": [n],
            "score": 1.0 / n,
            "category": "general",
        }
        for n in (1, 2, 3)
    ] + [{"url": "javascript:alert(1)", "title": "not a web page", "content": ""}]


async def _scripted(query: str) -> Response | None:
    if query == "hang":
        await asyncio.Event().wait()
    if query == "fail":
        return JSONResponse({"error": "engines down"}, status_code=500)
    if query == "garbage":
        return HTMLResponse("<html>oops</html>")
    return None


async def searxng(request: Request) -> Response:
    requests.append({"params": dict(request.query_params), "headers": dict(request.headers)})
    query = request.query_params.get("q", "")
    if request.query_params.get("format") != "json":
        return Response("format not allowed", status_code=403)  # what SearXNG answers without the json format
    scripted = await _scripted(query)
    return scripted or JSONResponse(
        {
            "query": query,
            "number_of_results": 0,
            "results": _results(query),
            "answers": [],
            "corrections": [],
            "infoboxes": [],
            "suggestions": [],
            "unresponsive_engines": [],
        }
    )


async def brave(request: Request) -> Response:
    requests.append({"params": dict(request.query_params), "headers": dict(request.headers)})
    if request.headers.get("x-subscription-token") != "brave-secret-key":
        return JSONResponse({"type": "ErrorResponse"}, status_code=401)
    query = request.query_params.get("q", "")
    scripted = await _scripted(query)
    results = [{"title": r["title"], "url": r["url"], "description": r["content"]} for r in _results(query)]
    return scripted or JSONResponse({"type": "search", "web": {"type": "search", "results": results}})


app = Starlette(routes=[Route("/search", searxng), Route("/res/v1/web/search", brave)])
