"""gemini-cli (npm, installed by scripts/test-clients.sh) against a live server, unchanged: its
GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY, a model id with '/', a non-interactive prompt."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fake_upstream import FakeUpstream, Reply
from tests.gateway.conftest import MODEL, Gateway, wait_for_usage
from tests.needs import missing

pytestmark = pytest.mark.django_db(transaction=True)

GEMINI_CLI = Path(__file__).resolve().parents[1] / "clients" / "node_modules" / ".bin" / "gemini"


def gemini_cli() -> str:
    if not GEMINI_CLI.exists():
        missing(f"gemini-cli is not installed at {GEMINI_CLI} (scripts/test-clients.sh)")
    return str(GEMINI_CLI)


def test_gemini_cli_answers_a_prompt_through_the_gateway(
    live_gateway: Gateway, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    command = gemini_cli()
    fake_upstream.queue(Reply(content="Hello from the gateway"))
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".gemini").mkdir(parents=True)
    work.mkdir()
    # What a user sets once: the API key's way in, no usage statistics, no update checks.
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
    }
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
        "GOOGLE_GEMINI_BASE_URL": live_gateway.url,
        "GEMINI_API_KEY": live_gateway.secret,
        "NO_COLOR": "1",
    }
    # The timeout only guards against a hang: a prompt answers in seconds.
    done = subprocess.run(
        [command, "-p", "Say hello", "-m", MODEL], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Hello from the gateway" in done.stdout
    sent = fake_upstream.last.body or {}
    assert sent["messages"][0]["role"] == "system" and "Gemini CLI" in sent["messages"][0]["content"]
    assert sent["tools"] and sent["stream"] is True
    [row] = wait_for_usage(1)
    assert (row.api_key_id, row.model_public_id, row.status, row.stream) == (live_gateway.key.pk, MODEL, 200, True)
