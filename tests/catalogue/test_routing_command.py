"""`models routing`: a model's routing strategy set and shown; the average it reads in `models health`,
the admin and /metrics."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError
from django.test import Client

from accounts.models import User
from catalogue.models import Deployment, LanguageModel, Provider
from core.clock import ManualClock
from gateway import health
from tests.catalogue.test_commands import run

pytestmark = pytest.mark.django_db

LATENCY = "model acme/m0 routing: priority, then lowest measured time to first token"
PRIORITY = "model acme/m0 routing: priority, then fewest in flight per weight"


@pytest.fixture
def model(settings: Any) -> LanguageModel:
    settings.REDIS_URL = None  # the files store: what this process measures is what the reports read
    provider = Provider.objects.create(name="p", base_url="https://x.test/v1")
    return LanguageModel.objects.create(public_id="acme/m0", provider=provider, upstream_model="m")


def test_models_routing_sets_the_strategy_and_shows_it(model: LanguageModel) -> None:
    assert run("models", "routing", "acme/m0").strip() == PRIORITY
    assert run("models", "routing", "acme/m0", "--strategy", "latency").strip() == LATENCY
    assert LanguageModel.objects.get(pk=model.pk).routing == "latency"
    assert run("models", "routing", "acme/m0").strip() == LATENCY, "without --strategy it only shows"
    run("models", "routing", "acme/m0", "--strategy", "priority")
    assert LanguageModel.objects.get(pk=model.pk).routing == "priority"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["acme/m0", "--strategy", "fastest"], "argument --strategy: invalid choice: 'fastest'"),
        (["acme/m0", "--strategy", ""], "argument --strategy: invalid choice: ''"),
        (["acme/nope", "--strategy", "latency"], "no model 'acme/nope'"),
        (["acme/nope"], "no model 'acme/nope'"),
    ],
)
def test_models_routing_refuses_bad_input(model: LanguageModel, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("models", "routing", *args)
    assert LanguageModel.objects.get(pk=model.pk).routing == "priority"


def test_the_measured_average_shows_in_models_health_the_admin_and_metrics(
    model: LanguageModel, admin: User, settings: Any, clock: ManualClock
) -> None:
    deployment = Deployment.objects.get(model=model)
    assert "ttft average" not in run("models", "health", "acme/m0"), "nothing measured yet"
    async_to_sync(health.succeeded)(deployment.pk, 0.12)
    assert run("models", "health", "acme/m0").rstrip("\n").endswith("\tttft average 120 ms")
    clock.advance(health.LATENCY_SHARE_SECONDS)  # without Redis the workers' files say it this often
    async_to_sync(health.succeeded)(deployment.pk, 0.22)  # 0.12 + 0.3 * (0.22 - 0.12)
    assert run("models", "health", "acme/m0").rstrip("\n").endswith("\tttft average 150 ms")

    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/catalogue/languagemodel/{model.pk}/change/")
    assert page.status_code == 200 and b"ttft average 150 ms" in page.content
    assert b'name="routing"' in page.content

    settings.METRICS_ENABLED, settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = True, "t" * 24, []
    scrape = Client().get("/metrics", headers={"Authorization": "Bearer " + "t" * 24}).content.decode()
    line = f'chatsite_deployment_ttft_average_seconds{{deployment="{deployment.pk}",model="acme/m0",provider="p"}}'
    assert f"{line} 0.15" in scrape
