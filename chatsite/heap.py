"""The worker's heap, settled once the application is loaded.

Django, DRF, pydantic and the rest leave about 170,000 long-lived objects after start-up. Every
full collection walked all of them, 85 ms each under bench/chat_sockets.py's 200 chats (measured with
gc.callbacks), a pause of every socket's frames. Frozen, they are never scanned again; only what
requests create is. A young generation of 10,000 objects rather than 700 makes collections rarer:
from the freeze to the end of a 200-chat round, 13 collections took 0.1 s in all, none of them full.
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
