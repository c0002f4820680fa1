"""The bundled model served by several llama.cpp servers: one provider and deployment per server.

The servers here are real loopback HTTP servers (the fake upstream) standing where llama.cpp's would: what is
under test is the registration and the routing over it, not the model.
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from accounts.keys import create_key
from accounts.models import User
from catalogue.models import Deployment, Provider
from chatsite.local_model import MODEL_ID, PROVIDER_NAME, register, split_threads
from tests.fake_upstream import FakeUpstream, Reply
from tests.inprocess import InProcessApp
from tests.live_server import free_port


@pytest.fixture
def second_server() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    server.default = Reply(content="from the second server")
    try:
        yield server
    finally:
        server.stop()


def ask(app: InProcessApp, secret: str) -> str:
    client = openai.OpenAI(base_url="http://testserver/v1", api_key=secret, max_retries=0, http_client=app.client())
    reply = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Hi"}])
    return reply.choices[0].message.content or ""


def test_threads_are_split_between_the_servers_and_each_gets_at_least_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 9)
    assert split_threads(1) == [8]
    assert split_threads(2) == [4, 4]
    assert split_threads(3) == [3, 3, 2]
    assert split_threads(10) == [1] * 10


@pytest.mark.django_db
def test_each_server_becomes_a_deployment_that_takes_one_request_at_a_time() -> None:
    urls = ["http://127.0.0.1:41001/v1", "http://127.0.0.1:41002/v1", "http://127.0.0.1:41003/v1"]
    model = register(urls, 8192, 2048)

    deployments = list(Deployment.objects.filter(model=model, enabled=True).select_related("provider"))
    assert sorted(d.provider.base_url for d in deployments) == urls
    assert sorted(d.provider.name for d in deployments) == [PROVIDER_NAME, "local-2", "local-3"]
    assert {d.max_concurrent for d in deployments} == {1}
    assert {d.upstream_model for d in deployments} == {MODEL_ID}


@pytest.mark.django_db
def test_fewer_servers_next_run_disable_the_extra_ones_and_more_bring_them_back() -> None:
    register(["http://127.0.0.1:41001/v1", "http://127.0.0.1:41002/v1"], 8192, 2048)
    model = register(["http://127.0.0.1:41005/v1"], 8192, 2048)

    assert [d.provider.base_url for d in Deployment.objects.filter(model=model, enabled=True)] == [
        "http://127.0.0.1:41005/v1"
    ]
    assert not Provider.objects.get(name="local-2").enabled

    register(["http://127.0.0.1:41006/v1", "http://127.0.0.1:41007/v1"], 8192, 2048)
    assert Deployment.objects.filter(model=model, enabled=True).count() == 2
    assert Provider.objects.get(name="local-2").enabled


@pytest.mark.django_db
def test_an_admins_own_provider_named_like_ours_is_left_alone() -> None:
    Provider.objects.create(name="localai", base_url="http://127.0.0.1:41009/v1")
    register(["http://127.0.0.1:41001/v1"], 8192, 2048)
    assert Provider.objects.get(name="localai").enabled


def test_both_servers_answer_and_a_stopped_one_fails_over_to_the_other(
    app: InProcessApp, fake_upstream: FakeUpstream, second_server: FakeUpstream, alice: User
) -> None:
    fake_upstream.default = Reply(content="from the first server")
    register([fake_upstream.base_url, second_server.base_url], 8192, 2048)
    _, secret = create_key(alice, "tests")

    answers = {ask(app, secret) for _ in range(12)}
    assert answers == {"from the first server", "from the second server"}, "both deployments route"

    stopped = Provider.objects.get(name=PROVIDER_NAME)
    stopped.base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there any more
    stopped.save()
    assert [ask(app, secret) for _ in range(3)] == ["from the second server"] * 3
