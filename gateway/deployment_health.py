"""Deployments' health as the catalogue's admin and `models health` show it: the circuit's state, and the
last hour of the ledger (requests, error rate, p50 latency and time to first token), and the moving
average of its time to first byte that routing by latency reads (gateway.latency). GatewayConfig.ready()
registers `report` with catalogue.health_report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Aggregate, Count, F, FloatField, Q

from catalogue.health_report import DeploymentHealth
from catalogue.models import Deployment
from core.clock import clock
from gateway import health
from usage.models import UsageRecord

WINDOW = timedelta(hours=1)


class _Median(Aggregate):
    function = "percentile_cont"
    template = "percentile_cont(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


@dataclass
class Report:
    deployment: Deployment
    state: str  # "healthy", "half-open", "cooling down until HH:MM:SS UTC", "disabled"
    requests: int
    error_rate: float | None
    p50_latency_ms: float | None
    p50_ttft_ms: float | None
    ttft_average_ms: float | None  # the moving average routing by latency reads; None: never measured


def _failed() -> Q:
    return Q(status__gte=500) | Q(status__in=(408, 409, 429))


def reports(deployments: list[Deployment]) -> list[Report]:
    ids = [d.pk for d in deployments]
    states = health.shared_states(ids)
    averages = health.shared_latencies(ids)
    since = clock().now() - WINDOW
    stats = {
        row["deployment"]: row
        for row in UsageRecord.objects.filter(deployment__in=ids, created_at__gte=since)
        .values("deployment")
        .annotate(
            requests=Count("id"),
            failed=Count("id", filter=_failed()),
            latency=_Median(F("latency_ms")),
            ttft=_Median(F("ttft_ms")),
        )
    }
    now = clock().time()
    out = []
    for deployment in deployments:
        state = states.get(deployment.pk, health.HEALTHY)
        if not deployment.enabled or not deployment.provider.enabled:
            label = "disabled"
        elif state.available_at() > now:
            until = datetime.fromtimestamp(state.available_at(), UTC)
            label = f"cooling down until {until:%H:%M:%S} UTC"
        else:
            label = state.label(now)
        row = stats.get(deployment.pk)
        requests = row["requests"] if row else 0
        average = averages.get(deployment.pk)
        out.append(
            Report(
                deployment,
                label,
                requests,
                row["failed"] / requests if row and requests else None,
                row["latency"] if row else None,
                row["ttft"] if row else None,
                average.seconds * 1000 if average is not None else None,
            )
        )
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def report(deployments: list[Deployment]) -> list[DeploymentHealth]:
    """Each deployment's state and its last hour, in words."""
    out = []
    for r in reports(deployments):
        rate = "-" if r.error_rate is None else f"{r.error_rate:.0%}"
        last_hour = f"{r.requests} requests, errors {rate}, p50 {_ms(r.p50_latency_ms)}, ttft p50 {_ms(r.p50_ttft_ms)}"
        measured = "" if r.ttft_average_ms is None else f"ttft average {_ms(r.ttft_average_ms)}"
        out.append(DeploymentHealth(r.state, last_hour, measured))
    return out
