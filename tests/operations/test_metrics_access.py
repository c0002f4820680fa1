"""/metrics answers only a scraper with the token or from a listed address, and is not there at all when off."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from django.test import Client

TOKEN = "scrape-token-0123456789"


@pytest.fixture
def metrics_on(settings: Any) -> None:
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []


def test_without_metrics_token_the_endpoint_is_not_found(settings: Any) -> None:
    settings.METRICS_ENABLED = False
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    assert Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


@pytest.mark.usefixtures("metrics_on")
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "]
)
def test_a_scrape_without_the_token_is_refused(authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = Client().get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"chatsite_" not in response.content


@pytest.mark.django_db
@pytest.mark.usefixtures("metrics_on")
def test_a_scrape_with_the_token_gets_the_exposition_format() -> None:
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    assert "# TYPE chatsite_deployment_circuit_state gauge" in text


@pytest.mark.django_db
@pytest.mark.usefixtures("metrics_on")
def test_a_listed_address_needs_no_token_and_another_address_does(settings: Any) -> None:
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.1.0.0/16")]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.2.0.1").get("/metrics").status_code == 401


@pytest.mark.usefixtures("metrics_on")
def test_only_get_is_answered() -> None:
    response = Client().post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405
