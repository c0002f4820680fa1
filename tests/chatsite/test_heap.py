"""The worker settles its heap once the application is loaded (chatsite.heap)."""

from __future__ import annotations

import gc

from chatsite import heap


def test_loading_the_application_freezes_what_start_up_left() -> None:
    import chatsite.asgi  # noqa: F401 (loading it is what settles the heap)

    # Django, DRF, pydantic and our modules: far more than any request leaves behind.
    assert gc.get_freeze_count() > 50_000
    assert gc.get_threshold() == heap.THRESHOLDS
