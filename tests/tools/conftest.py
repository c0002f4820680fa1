"""The tools' tests share the real servers of tests/tools/fixtures.py."""

from tests.tools.fixtures import local, mcp_base, search_base, search_engine, site  # noqa: F401
