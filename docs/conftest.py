"""The test suite's fixtures for docs/screenshots.py (a browser, a live server, the fake upstream, a user)."""

from tests.conftest import _fake_upstream_server, alice, chromium_browser, fake_upstream, live_server  # noqa: F401
