"""With no metrics, traces nor JSON logs asked for, the site loads neither library and serves /v1 unwrapped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import django
django.setup()
import chatsite.asgi
from operations import observe
# opentelemetry's API alone may come with a dependency (the MCP SDK's): its SDK and exporter are ours to load.
ours = ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http", "prometheus_client", "pythonjsonlogger")
print(sorted(m for m in ours if m in sys.modules))
print(observe.parts.any)
"""

OFF = ("METRICS_TOKEN", "METRICS_ALLOWED_ADDRESSES", "OTEL_EXPORTER_OTLP_ENDPOINT", "LOG_FORMAT")


def _probe(**env: str) -> list[str]:
    full = {k: v for k, v in os.environ.items() if k not in OFF}
    full.update(env, DJANGO_SETTINGS_MODULE="chatsite.settings")
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=full, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split("\n")[:2]


def test_nothing_is_imported_or_wrapped_when_all_is_off() -> None:
    assert _probe() == ["[]", "False"]


def test_each_part_loads_its_library_only_when_asked_for(tmp_path: Path) -> None:
    metrics = _probe(METRICS_TOKEN="scrape-token-0123456789", PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    assert metrics == ["['prometheus_client']", "True"]
    tracing = _probe(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert tracing == ["['opentelemetry.exporter.otlp.proto.http', 'opentelemetry.sdk.trace']", "True"]
