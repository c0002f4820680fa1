"""Deployment health is shared through Redis: a deployment that trips on one worker is skipped by the other."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import Deployment, LanguageModel, Provider
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer, free_port
from tests.scaleout.conftest import Cluster
from usage.models import UsageRecord

pytestmark = pytest.mark.timeout(120)

MODEL = "acme/routed"


def _post(server: LiveServer, secret: str) -> httpx.Response:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello"}]}
    return httpx.post(
        server.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )


def test_a_deployment_tripped_on_one_worker_is_skipped_by_the_other(
    shared: Cluster, fake_upstream: FakeUpstream, alice: User
) -> None:
    dead = Provider.objects.create(name="dead", base_url=f"http://127.0.0.1:{free_port()}/v1", connect_timeout=2)
    alive = Provider.objects.create(name="alive", base_url=fake_upstream.base_url, read_timeout=10)
    model = LanguageModel.objects.create(public_id=MODEL, provider=dead, upstream_model="dead-model")
    Deployment.objects.create(model=model, provider=alive, upstream_model="alive-model", priority=1)
    fake_upstream.default = Reply(content="from the live one")
    secret = create_key(alice, "routing")[1]

    first = _post(shared.a, secret)
    assert first.status_code == 200, first.text
    second = _post(shared.b, secret)
    assert second.status_code == 200, second.text

    deadline = time.monotonic() + 10  # each worker writes its row just after answering
    while UsageRecord.objects.filter(model_public_id=MODEL).count() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    rows = list(UsageRecord.objects.filter(model_public_id=MODEL).order_by("created_at", "pk"))
    assert [row.attempts for row in rows] == [2, 1], "worker B skipped the deployment worker A found dead"
    assert {row.deployment.provider.name for row in rows} == {"alive"}
