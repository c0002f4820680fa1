"""`models health` and the admin show the circuits the server's routers use, not those of their own process."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import LanguageModel, Provider
from gateway import health
from tests.live_server import LiveServer, free_port
from tests.operations.helpers import post_chat, start_workers

pytestmark = pytest.mark.timeout(120)

MODEL = "dead/echo"


@pytest.fixture(scope="module")
def server_without_redis(django_db_setup: None, django_db_blocker: Any) -> Iterator[LiveServer]:
    [server] = start_workers(1, {})
    yield server
    server.stop()


@pytest.fixture
def dead_model(transactional_db: None) -> LanguageModel:
    dead = Provider.objects.create(name="dead", base_url=f"http://127.0.0.1:{free_port()}/v1", connect_timeout=2)
    return LanguageModel.objects.create(public_id=MODEL, provider=dead, upstream_model="echo")


def test_a_deployment_tripped_by_the_server_shows_as_cooling_down(
    server_without_redis: LiveServer, dead_model: LanguageModel, alice: User, admin: User, settings: Any
) -> None:
    secret = create_key(alice, "health")[1]
    answer = post_chat(server_without_redis, secret, MODEL)
    assert answer.status_code in (502, 503), answer.text
    settings.HEALTH_DIR = Path(server_without_redis.env["VAR_DIR"]) / "health"
    health.forget_local_state()  # this process never saw the deployment fail

    out = io.StringIO()
    call_command("models", "health", MODEL, stdout=out)
    line = out.getvalue()
    assert "dead/echo" in line
    assert "cooling down until" in line, line
    assert "healthy" not in line

    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/catalogue/languagemodel/{dead_model.pk}/change/")
    assert page.status_code == 200
    assert b"cooling down until" in page.content


def test_the_states_of_a_process_that_exited_are_not_read(settings: Any, tmp_path: Path) -> None:
    settings.HEALTH_DIR = tmp_path
    exited = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = health.shared_folder()
    folder.mkdir(parents=True)
    cooling = [0, 1, 4_000_000_000.0, 0.0, True]
    (folder / f"{exited.stdout.strip()}.json").write_text(json.dumps({"7": cooling}))
    assert health.shared_states([7]) == {7: health.HEALTHY}
