"""Models this process is still preparing (the bundled local model while `make run` installs and starts it).

The launcher announces a model here before it serves and withdraws it once the model is registered (or
could not be); /v1/models and the chat page say it is coming meanwhile. In-process only: `make run` serves
from the process that prepares the model.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_preparing: dict[str, str] = {}


def announce(public_id: str, status: str) -> None:
    """`public_id` is being prepared; `status` says what is happening, in a few words."""
    with _lock:
        _preparing[public_id] = status


def withdraw(public_id: str) -> None:
    with _lock:
        _preparing.pop(public_id, None)


def preparing() -> dict[str, str]:
    """Each model being prepared, with what is happening to it."""
    with _lock:
        return dict(_preparing)
