"""Fixtures of the tools' real servers on loopback (tests/tools and tests/gateway import them in their conftest):
the MCP server, a fake SearXNG (`search_engine` sets it as the engine), the page server; `local`: the MCP
server registered by an admin for everyone, allowed internal addresses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.tools import fake_search, mcp_server, pages
from tests.tools.servers import serve
from tools import services
from tools.mcp_client import forget_listings
from tools.models import McpServer


@pytest.fixture(scope="module")
def mcp_base() -> Iterator[str]:
    with serve(mcp_server.app()) as url:
        yield url


@pytest.fixture(scope="module")
def search_base() -> Iterator[str]:
    with serve(fake_search.app) as url:
        yield url


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve(pages.app) as url:
        yield url


@pytest.fixture
def search_engine(settings: Any, search_base: str) -> Iterator[None]:
    settings.SEARXNG_URL = search_base
    settings.TOOLS_SEARCH_ENGINE = "searxng"
    forget_listings()
    yield
    forget_listings()


@pytest.fixture
def local(mcp_base: str) -> McpServer:
    server, _ = services.put_global_server("local", f"{mcp_base}/mcp", None, allow_internal=True)
    return server
