"""Deployments' health in words, for the admin's deployment rows and `models health`.

The catalogue knows deployments but not how they fare: the gateway, which routes to them and keeps
their circuits, registers the reporter in its AppConfig.ready().
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from catalogue.models import Deployment


@dataclass(frozen=True)
class DeploymentHealth:
    state: str  # "healthy", "half-open", "cooling down until HH:MM:SS UTC", "disabled"
    last_hour: str  # "12 requests, errors 8%, p50 340 ms, ttft p50 120 ms"
    measured: str = ""  # "ttft average 95 ms": what routing by latency reads; "" until measured


Reporter = Callable[[list[Deployment]], list[DeploymentHealth]]
_reporters: dict[str, Reporter] = {}


def register(reporter: Reporter) -> None:
    _reporters["health"] = reporter


def report(deployments: list[Deployment]) -> list[DeploymentHealth]:
    """One entry per deployment, in order."""
    if "health" not in _reporters:
        raise ImproperlyConfigured("No app registered a deployment health reporter: is gateway installed?")
    return _reporters["health"](deployments)


def describe(deployments: list[Deployment]) -> list[list[str]]:
    """One line of text columns per deployment (the `models health` command)."""
    return [
        [
            d.model.public_id,
            f"{d.provider.name}/{d.upstream_model}",
            f"priority {d.priority} weight {d.weight}",
            found.state,
            f"last hour: {found.last_hour}",
            *([found.measured] if found.measured else []),
        ]
        for d, found in zip(deployments, report(deployments), strict=True)
    ]
