"""Shared fixtures: the personas every behaviour area tests with."""

from __future__ import annotations

import pytest

from accounts.models import User

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def alice(db: None) -> User:
    """The owner in most tests."""
    return User.objects.create_user("alice", "alice@example.com", PASSWORD)


@pytest.fixture
def bob(db: None) -> User:
    """Another user, who must never see alice's data."""
    return User.objects.create_user("bob", "bob@example.com", PASSWORD)


@pytest.fixture
def admin(db: None) -> User:
    return User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
