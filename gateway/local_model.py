"""The bundled local model (SmolLM2) as the default provider. Filled in by the local-model work."""

from __future__ import annotations


def start_local_model() -> None:
    print("==> Local model: not set up yet", flush=True)
