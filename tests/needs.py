"""Tests that need a system part (Chromium, Redis, the local model) skip without it on a
developer's machine, and fail in CI (CI=true), where a skipped test could never fail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def missing(message: str) -> None:
    """Stop the test: a failure in CI, a skip elsewhere."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)  # outside CI only


# Debian's chromium, never a browser of Playwright's own (that download fails here). Without the
# background-networking flags it keeps trying to reach Google, and this machine refuses each try.
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium() -> str:
    """The chromium executable for Playwright's `executable_path` (stops the test when missing)."""
    if not CHROMIUM.exists():
        missing(f"chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    return str(CHROMIUM)
