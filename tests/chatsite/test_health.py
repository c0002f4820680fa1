from __future__ import annotations

import pytest
from django.db import connections
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


def test_healthz_answers_without_the_database(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_answers_ok_when_the_database_answers(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_readyz_answers_503_with_a_reason_when_the_database_does_not(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    connection = connections["default"]
    original = dict(connection.settings_dict)
    connection.close()
    # Point the connection at a port where nothing listens, without the pool retrying for seconds.
    connection.settings_dict.update(
        {"HOST": "127.0.0.1", "PORT": "1", "OPTIONS": {"connect_timeout": 1}, "NAME": original["NAME"]}
    )
    if hasattr(connection, "close_pool"):
        connection.close_pool()
    try:
        response = client.get("/readyz")
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)
        if hasattr(connection, "close_pool"):
            connection.close_pool()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert "database unreachable" in body["reason"]
