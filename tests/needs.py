"""Tests that need a system part (Chromium, Redis, the local model) skip without it on a
developer's machine, and fail in CI (CI=true), where a skipped test could never fail."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def missing(message: str) -> None:
    """Stop the test: a failure in CI, a skip elsewhere."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)  # outside CI only
