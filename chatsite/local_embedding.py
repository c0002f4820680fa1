"""The bundled embedding model (WordLlama, 256 dimensions) as provider `local-embed`, so knowledge bases
retrieve by meaning with no cloud account.

`make run` starts chatsite.local_embedding_server as a child process on a free loopback port and
registers it with the catalogue as model `wordllama-256` of kind `embedding` (a deployment like any other:
knowledge's embeddings go through the gateway's routing, so the owner's ledger, limits and budgets count
them). KNOWLEDGE_EMBEDDING_MODEL names it as new stores' default. The weights ship inside the `wordllama`
package; nothing is downloaded. LOCAL_EMBEDDING=0 neither starts it nor lists it. Tests start the same server.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from chatsite.local_embedding_server import MODEL_ID
from chatsite.local_model import _die_with_parent, _free_port

if TYPE_CHECKING:
    from catalogue.models import LanguageModel

PROVIDER_NAME = "local-embed"
START_TIMEOUT = 60.0
# What one request may hold: WordLlama averages word vectors, so any length embeds; the chunker's largest
# chunk (4,096 tokens) is what knowledge sends.
CONTEXT_LENGTH = 8192


class LocalEmbeddingUnavailable(Exception):
    """The embedding model cannot run here; the message says why."""


@dataclass
class LocalEmbeddingServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def start_server(log_path: Path, timeout: float = START_TIMEOUT) -> LocalEmbeddingServer:
    """Start the server; return once it answers /v1/models. LocalEmbeddingUnavailable (the child stopped) if not."""
    if importlib.util.find_spec("wordllama") is None:
        raise LocalEmbeddingUnavailable("the package wordllama is not installed")
    port = _free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "chatsite.local_embedding_server", "--port", str(port)],
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
    server = LocalEmbeddingServer(process, port, log_path)
    try:
        _wait_until_ready(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_ready(server: LocalEmbeddingServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise LocalEmbeddingUnavailable(
                    f"the embedding server exited with status {server.process.returncode} (log: {server.log_path})"
                )
            try:
                if client.get(f"{server.base_url}/models").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    raise LocalEmbeddingUnavailable(f"the embedding server did not answer within {timeout:.0f}s")


def register(base_url: str) -> LanguageModel:
    from catalogue.services import register_server_pool

    return register_server_pool(
        PROVIDER_NAME,
        [base_url],
        MODEL_ID,
        context_length=CONTEXT_LENGTH,
        max_output_tokens=0,
        model_defaults={
            "kind": "embedding",
            "owned_by": "dleemiller",
            "category": "local",
            "description": "WordLlama l2_supercat (256 dimensions), bundled and running on this machine: static "
            "word embeddings for knowledge bases, fast on a CPU, modest in quality.",
            "enabled": True,
        },
    )


def start_local_embedding() -> LocalEmbeddingServer | None:
    """The launcher's step: start and register the bundled embedding model, or say why not and go on."""
    from django.conf import settings

    from catalogue.services import disable_server_pool

    if not settings.LOCAL_EMBEDDING:
        print("==> Local embedding model: off (LOCAL_EMBEDDING=0)", flush=True)
        disable_server_pool(PROVIDER_NAME)
        return None
    try:
        server = start_server(Path(settings.VAR_DIR) / "local-embedding.log")
    except LocalEmbeddingUnavailable as exc:
        print(f"!!  Local embedding model not started: {exc}; knowledge bases use full-text search.", flush=True)
        disable_server_pool(PROVIDER_NAME)
        return None
    atexit.register(server.stop)
    register(server.base_url)
    print(f"==> Local embedding model {MODEL_ID} ready at {server.base_url}", flush=True)
    return server
