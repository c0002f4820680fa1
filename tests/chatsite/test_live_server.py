"""The test infrastructure itself: the live server and the fake upstream answer for real."""

from __future__ import annotations

import httpx
import pytest

from accounts.models import User
from tests.fake_upstream import FakeUpstream, Reply
from tests.live_server import LiveServer


@pytest.mark.django_db(transaction=True)
def test_the_live_server_serves_the_signup_page_and_sees_the_test_database(live_server: LiveServer) -> None:
    User.objects.create_user("zoe", password="a-long-and-unusual-password")
    with httpx.Client(base_url=live_server.url) as client:
        assert client.get("/accounts/signup/").status_code == 200
        page = client.get("/accounts/login/")
        token = page.cookies["csrftoken"]
        response = client.post(
            "/accounts/login/",
            data={"username": "zoe", "password": "a-long-and-unusual-password", "csrfmiddlewaretoken": token},
        )
        assert response.status_code == 302, live_server.log()[-2000:]
        assert client.get("/readyz").json()["database"] == "ok"


def test_the_fake_upstream_streams_and_records(fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="one two three", chunks=3))
    body = {
        "model": "m",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi there"}],
    }
    with httpx.stream("POST", fake_upstream.base_url + "/chat/completions", json=body) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert '"prompt_tokens": 2' in lines[-2]
    assert fake_upstream.last.body == body
    assert fake_upstream.last.completed


def test_the_fake_upstream_notices_a_client_that_goes_away(fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(hang=True))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(fake_upstream.base_url + "/chat/completions", json={"model": "m", "messages": []}, timeout=0.3)
    assert fake_upstream.last.disconnected.wait(2)
