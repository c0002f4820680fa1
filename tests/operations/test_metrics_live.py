"""Metrics of two worker processes add up, and a real Prometheus scrapes them with the bearer token."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import LanguageModel
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer, free_port
from tests.needs import missing
from tests.operations.helpers import fake_model, post_chat, start_workers
from usage.models import Limit

pytestmark = pytest.mark.timeout(120)

TOKEN = "scrape-token-0123456789"
MODEL = "acme/metered"


@pytest.fixture(scope="module")
def workers(django_db_setup: None, django_db_blocker: Any) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two workers of one site, as one launcher's would be: one metrics folder, one token."""
    folder = tempfile.mkdtemp(prefix="metrics-")
    # Limits read afresh on every request: a limit the test sets applies at once.
    a, b = start_workers(2, {"METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": folder, "LIMITS_CACHE_SECONDS": "0"})
    yield a, b
    b.stop()
    a.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def model(fake_upstream: FakeUpstream, transactional_db: None) -> LanguageModel:
    prices = {"input_price_per_million": Decimal("1000"), "output_price_per_million": Decimal("2000")}
    return fake_model(fake_upstream, MODEL, **prices)


@pytest.fixture
def alice_key(alice: User) -> str:
    return create_key(alice, "metrics")[1]


def _post(server: LiveServer, secret: str) -> httpx.Response:
    return post_chat(server, secret, MODEL)


def scrape(server: LiveServer) -> dict[str, float]:
    """Every sample of a scrape, keyed `name{label="value",...}` (labels sorted)."""
    response = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for k, v in samples.items() if k.startswith(name + "{") and all(w in k for w in wanted))


def eventually(read: Callable[[], float], expected: float, seconds: float = 10) -> float:
    """`read()` once it equals `expected` (a worker counts a request just after answering it), or its last value."""
    deadline = time.monotonic() + seconds
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


def test_the_counts_of_two_workers_add_up_in_a_scrape_of_either(
    workers: tuple[LiveServer, LiveServer], model: LanguageModel, alice_key: str
) -> None:
    a, b = workers
    before = total(scrape(a), "chatsite_requests_total", model=MODEL, status="200")
    for server in (a, a, a, b, b):
        assert _post(server, alice_key).status_code == 200
    for server in (a, b):
        counted = eventually(lambda s=server: total(scrape(s), "chatsite_requests_total", model=MODEL), before + 5)
        assert counted == before + 5
    samples = scrape(b)
    endpoint = "/v1/chat/completions"
    assert total(samples, "chatsite_request_duration_seconds_count", endpoint=endpoint, model=MODEL) >= 5
    assert total(samples, "chatsite_tokens_total", model=MODEL, type="input") > 0
    assert total(samples, "chatsite_tokens_total", model=MODEL, type="output") > 0
    assert total(samples, "chatsite_cost_usd_total", model=MODEL) > 0
    deployment = str(model.deployments.get().pk)
    assert total(samples, "chatsite_upstream_attempts_total", deployment=deployment, provider="fake") >= 5
    assert total(samples, "chatsite_deployment_circuit_state", deployment=deployment, model=MODEL) == 0
    assert "chatsite_ledger_unwritten_rows{}" in samples


def test_a_stream_in_flight_and_a_refusal_show(
    workers: tuple[LiveServer, LiveServer],
    model: LanguageModel,
    alice: User,
    alice_key: str,
    fake_upstream: FakeUpstream,
) -> None:
    a, b = workers
    held = Reply(content="one two three four", chunks=4, hold_after_chunks=1)
    fake_upstream.queue(held)
    refused_before = total(scrape(a), "chatsite_rate_limit_refusals_total", code="rate_limit_exceeded")
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello"}], "stream": True}
    with httpx.stream(
        "POST", b.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {alice_key}"}
    ) as response:
        lines = response.iter_lines()  # kept: a generator collected early would close the stream
        next(lines)
        assert eventually(lambda: total(scrape(a), "chatsite_streams_in_flight"), 1) == 1
        held.released.set()
        assert [line for line in lines if line][-1] == "data: [DONE]"
    assert eventually(lambda: total(scrape(a), "chatsite_streams_in_flight"), 0) == 0

    Limit.objects.create(user=alice, requests_per_minute=1)
    statuses = [_post(a, alice_key).status_code for _ in range(2)]
    assert statuses[-1] == 429
    refused = eventually(
        lambda: total(scrape(b), "chatsite_rate_limit_refusals_total", code="rate_limit_exceeded"), refused_before + 1
    )
    assert refused == refused_before + 1


@pytest.fixture(scope="module")
def prometheus(workers: tuple[LiveServer, LiveServer]) -> Iterator[str]:
    """Debian's Prometheus on loopback, scraping worker A every second with the bearer token."""
    binary = shutil.which("prometheus")
    if binary is None:
        missing("prometheus is not installed (apt-get install prometheus)")
        raise AssertionError  # not reached
    folder = Path(tempfile.mkdtemp(prefix="prometheus-"))
    config = folder / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: chatsite\n"
        "    authorization:\n      type: Bearer\n"
        f"      credentials: {TOKEN}\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{workers[0].port}']\n"
    )
    port = free_port()
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (folder / "prometheus.log").read_text()
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def query(prometheus: str, expression: str) -> list[dict[str, Any]]:
    answer = httpx.get(prometheus + "/api/v1/query", params={"query": expression}, timeout=5).json()
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def test_a_real_prometheus_scrapes_the_requests_with_the_token(
    workers: tuple[LiveServer, LiveServer], prometheus: str, model: LanguageModel, alice_key: str
) -> None:
    a, b = workers
    before = total(scrape(a), "chatsite_requests_total", model=MODEL)
    for server in (a, b):
        assert _post(server, alice_key).status_code == 200
    expected = eventually(lambda: total(scrape(a), "chatsite_requests_total", model=MODEL), before + 2)
    assert expected == before + 2
    expression = f'sum(chatsite_requests_total{{job="chatsite",model="{MODEL}"}})'

    def scraped() -> float:
        result = query(prometheus, expression)
        return float(result[0]["value"][1]) if result else -1.0

    assert eventually(scraped, expected, seconds=30) == expected
    up = query(prometheus, 'up{job="chatsite"}')
    assert [float(series["value"][1]) for series in up] == [1.0]
