"""The worker's heap, settled once the application is loaded.

Django, DRF, pydantic and the rest leave a few hundred thousand long-lived objects after start-up.
Every full collection walked all of them: 85 ms each, five in a 200-chat load, each a pause of every
socket's frames (measured with gc.callbacks under bench/chat_sockets.py). Frozen, they are never
scanned again; only what requests create is.
"""

from __future__ import annotations

import gc

from django.urls import get_resolver

THRESHOLDS = (10_000, 10, 10)


def settle() -> None:
    """Import every view now, then freeze what is alive: collections scan only what comes after."""
    get_resolver().url_patterns  # noqa: B018 (the URLconf imports the views lazily)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
