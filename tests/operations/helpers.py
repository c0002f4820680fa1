"""What the operations tests share: servers started with an environment, a model on the fake upstream, a chat call."""

from __future__ import annotations

import tempfile
from typing import Any

import httpx

from catalogue.models import LanguageModel, Provider
from tests.fake_upstream import FakeUpstream
from tests.live_server import LiveServer, start_server


def start_workers(count: int, env: dict[str, str]) -> list[LiveServer]:
    """`count` uvicorn workers on the test database with `env` (and a VAR_DIR of their own unless given)."""
    from django.conf import settings
    from django.db import connection

    env = {"VAR_DIR": tempfile.mkdtemp(prefix="operations-var-"), **env}
    started: list[LiveServer] = []
    try:
        for _ in range(count):
            started.append(start_server(dict(connection.settings_dict), settings.SECRET_KEY, server="uvicorn", env=env))
    except Exception:
        for server in started:
            server.stop()
        raise
    return started


def fake_model(fake_upstream: FakeUpstream, public_id: str, **fields: Any) -> LanguageModel:
    provider = Provider.objects.create(name="fake", base_url=fake_upstream.base_url, read_timeout=10)
    return LanguageModel.objects.create(public_id=public_id, provider=provider, upstream_model="fake", **fields)


def post_chat(server: LiveServer, secret: str, model: str, content: str = "Say hello", **body: Any) -> httpx.Response:
    return httpx.post(
        server.url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": content}], **body},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )
