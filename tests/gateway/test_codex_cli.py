"""Codex CLI (the npm release pinned in tests/clients, installed by scripts/test-clients.sh) against the live server,
on a model whose upstream speaks only chat completions: the fake upstream is scripted to call Codex's shell tool,
Codex runs the command and sends its output back, and the model's answer ends the turn.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.gateway.conftest import MODEL, Gateway, wait_for_usage
from tests.live_server import ROOT, LiveServer, start_server
from tests.needs import missing
from tests.tools import fake_search
from tools.models import ToolCall as Record

pytestmark = pytest.mark.django_db(transaction=True)

CODEX = ROOT / "tests" / "clients" / "node_modules" / ".bin" / "codex"
CONFIG = """
model = "{model}"
model_provider = "chatsite"

[model_providers.chatsite]
name = "chatsite"
base_url = "{base_url}"
env_key = "CHATSITE_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"""


@pytest.fixture(scope="module")
def codex_server(django_db_setup: None, django_db_blocker: Any, search_base: str) -> Iterator[LiveServer]:
    """A server process of its own, with the fake SearXNG as its search engine."""
    from django.conf import settings
    from django.db import connection

    env = {"SEARXNG_URL": search_base, "TOOLS_SEARCH_ENGINE": "searxng"}
    server = start_server(dict(connection.settings_dict), settings.SECRET_KEY, env=env)
    yield server
    server.stop()


@pytest.fixture
def served(gateway: Gateway, codex_server: LiveServer) -> Gateway:
    return dataclasses.replace(gateway, live_url=codex_server.url)


def codex_exec(gateway: Gateway, workdir: Path, prompt: str, *options: str) -> subprocess.CompletedProcess[str]:
    """`codex exec` in `workdir` with its own home (config.toml pointing at the live server), no sandbox."""
    if not CODEX.exists():
        missing(f"Codex CLI is not installed at {CODEX} (run scripts/test-clients.sh)")
    home = workdir / ".codex-home"
    home.mkdir()
    (home / "config.toml").write_text(CONFIG.format(model=MODEL, base_url=gateway.base_url))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(home),
        "CHATSITE_API_KEY": gateway.secret,
    }
    command = [str(CODEX), "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox"]
    return subprocess.run(
        [*command, "-C", str(workdir), *options, prompt],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def test_codex_completes_a_shell_tool_round_trip_on_a_chat_upstream(
    served: Gateway, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    command = "printf shell-ran > proof.txt && echo $((6*7))"
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("exec_command", json.dumps({"cmd": command}), id="call_shell_1")]),
        Reply(content="The command printed 42."),
    )
    ran = codex_exec(served, tmp_path, "Run the command.", "-c", 'web_search="disabled"')
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "The command printed 42." in ran.stdout
    assert (tmp_path / "proof.txt").read_text() == "shell-ran"

    first, second = fake_upstream.chat_requests()[-2:]
    assert first.body is not None and second.body is not None
    offered = [tool["function"]["name"] for tool in first.body["tools"]]
    assert "exec_command" in offered and "multi_agent_v1__spawn_agent" in offered  # a namespace, flattened
    assert first.body["prompt_cache_key"] and "client_metadata" not in first.body
    [result] = [m for m in second.body["messages"] if m["role"] == "tool"]
    assert result["tool_call_id"] == "call_shell_1" and "42" in result["content"]
    [asked] = [m for m in second.body["messages"] if m.get("tool_calls")]
    assert asked["tool_calls"][0]["function"]["name"] == "exec_command"
    rows = wait_for_usage(2)
    assert [(row.status, row.model_public_id, row.stream) for row in rows] == [(200, MODEL, True)] * 2


def test_codex_completes_a_web_search_we_run_on_a_chat_upstream(
    served: Gateway, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    searched = len(fake_search.requests)
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("web_search", json.dumps({"query": "otters"}), id="call_search_1")]),
        Reply(content="Otters hold hands while they sleep [1]."),
    )
    ran = codex_exec(served, tmp_path, "Search the web for otters.")
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "Otters hold hands while they sleep [1]." in ran.stdout
    assert [r["params"]["q"] for r in fake_search.requests[searched:]] == ["otters"]
    first, second = fake_upstream.chat_requests()[-2:]
    assert first.body is not None and second.body is not None
    assert "web_search" in [tool["function"]["name"] for tool in first.body["tools"]]
    [result] = [m for m in second.body["messages"] if m["role"] == "tool"]
    assert result["tool_call_id"] == "call_search_1" and "https://example.org/otters/1" in result["content"]
    assert Record.objects.get().status == "ok"
