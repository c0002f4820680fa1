"""The profile's "Tools" section: a user's own MCP servers added (credentials encrypted, never shown again),
tested against a real MCP server on loopback, removed; readable form errors; another user's server refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client

from accounts.models import User
from tests.tools import mcp_server
from tools import services
from tools.mcp_client import forget_listings
from tools.models import McpServer

pytestmark = pytest.mark.django_db

SECRET = "tok-very-secret-4242"


@pytest.fixture(autouse=True)
def _fresh_listings() -> Iterator[None]:
    forget_listings()
    yield
    forget_listings()


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def add(client: Client, **fields: str):  # type: ignore[no-untyped-def]
    data = {"mcp-transport": "streamable_http", **{f"mcp-{name}": value for name, value in fields.items()}}
    return client.post("/accounts/profile/tools/", data)


def test_a_user_adds_a_server_whose_token_is_stored_encrypted_and_never_shown_again(alice: User) -> None:
    client = signed_in(alice)
    response = add(client, name="docs", url="https://93.184.216.34/mcp", token=SECRET)
    assert response.status_code == 302
    server = McpServer.objects.get(owner=alice, name="docs")
    assert server.get_headers() == {"Authorization": f"Bearer {SECRET}"}
    assert SECRET not in server.headers_encrypted
    page = client.get("/accounts/profile/").content.decode()
    assert 'id="tools-heading"' in page
    assert 'data-mcp-server="docs"' in page
    assert "https://93.184.216.34/mcp" in page
    assert "Authorization (stored)" in page
    assert SECRET not in page


def test_a_header_instead_of_a_token_is_kept_as_given(alice: User) -> None:
    response = add(signed_in(alice), name="keyed", url="https://93.184.216.34/mcp", header=f"X-Api-Key: {SECRET}")
    assert response.status_code == 302
    assert McpServer.objects.get(owner=alice, name="keyed").get_headers() == {"X-Api-Key": SECRET}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "bad name!", "url": "https://93.184.216.34/mcp"}, "slug"),
        ({"name": "x", "url": "ftp://93.184.216.34/mcp"}, "starts with http:// or https://"),
        ({"name": "x", "url": "http://127.0.0.1:8000/mcp"}, "127.0.0.1 is"),
        ({"name": "x", "url": "http://0x7f000001/mcp"}, "Enter a valid URL"),
        ({"name": "x", "url": "http://localhost./mcp"}, "Enter a valid URL"),
        ({"name": "x", "url": "http://localhost/mcp"}, "a name of this machine"),
        ({"name": "x", "url": "http://169.254.169.254/latest"}, "metadata"),
        ({"name": "x", "url": "http://[::ffff:7f00:1]/mcp"}, "must be on the public internet"),
        ({"name": "x", "url": "http://10.1.2.3/mcp"}, "must be on the public internet"),
        ({"name": "x", "url": "https://93.184.216.34/mcp", "header": "no colon here"}, "Name: value"),
        ({"name": "x", "url": "https://93.184.216.34/mcp", "token": "two words"}, "one word"),
        (
            {"name": "x", "url": "https://93.184.216.34/mcp", "token": "t", "header": "Authorization: Bearer u"},
            "not both",
        ),
    ],
)
def test_a_bad_server_is_a_readable_form_error_and_nothing_is_stored(
    alice: User, fields: dict[str, str], message: str
) -> None:
    response = add(signed_in(alice), **fields)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not McpServer.objects.exists()


def test_a_second_server_of_the_same_name_is_a_form_error(alice: User) -> None:
    client = signed_in(alice)
    assert add(client, name="docs", url="https://93.184.216.34/mcp").status_code == 302
    response = add(client, name="docs", url="https://93.184.216.35/mcp")
    assert response.status_code == 400
    assert "already have an MCP server named docs" in response.content.decode()
    assert McpServer.objects.get(owner=alice).url == "https://93.184.216.34/mcp"


def test_test_lists_the_tools_of_a_server_the_user_may_use(alice: User, mcp_base: str) -> None:
    shared = McpServer.objects.create(name="local", url=f"{mcp_base}/mcp", everyone=True, allow_internal=True)
    client = signed_in(alice)
    assert 'data-mcp-server="local"' in client.get("/accounts/profile/").content.decode()
    response = client.post(f"/accounts/profile/tools/{shared.pk}/test/")
    assert response.status_code == 200
    page = response.content.decode()
    for tool in ("add", "fail", "hang", "pixel", "weather"):
        assert f'data-mcp-tool="{tool}"' in page


def test_test_of_a_users_server_on_an_internal_address_is_refused_by_the_guard(alice: User, mcp_base: str) -> None:
    # Past the form (a name can resolve anywhere): the guard refuses the address at connection.
    server = services.add_own_server(alice, "sneaky", f"{mcp_base}/mcp", {"Authorization": f"Bearer {SECRET}"})
    seen = len(mcp_server.requests)
    response = signed_in(alice).post(f"/accounts/profile/tools/{server.pk}/test/")
    assert response.status_code == 502
    page = response.content.decode()
    assert "refused" in page
    assert SECRET not in page
    assert len(mcp_server.requests) == seen


def test_another_users_server_is_invisible_untestable_and_unremovable(alice: User, bob: User) -> None:
    server = services.add_own_server(alice, "alices", "https://93.184.216.34/mcp", {"Authorization": SECRET})
    bobs = signed_in(bob)
    assert "alices" not in bobs.get("/accounts/profile/").content.decode()
    assert bobs.post(f"/accounts/profile/tools/{server.pk}/test/").status_code == 404
    assert bobs.get(f"/accounts/profile/tools/{server.pk}/remove/").status_code == 404
    assert bobs.post(f"/accounts/profile/tools/{server.pk}/remove/").status_code == 404
    assert McpServer.objects.filter(pk=server.pk).exists()


def test_a_global_server_cannot_be_removed_by_a_user(alice: User) -> None:
    shared = McpServer.objects.create(name="shared", url="https://93.184.216.34/mcp", everyone=True)
    assert signed_in(alice).post(f"/accounts/profile/tools/{shared.pk}/remove/").status_code == 404
    assert McpServer.objects.filter(pk=shared.pk).exists()


def test_a_user_removes_their_server_after_confirming(alice: User) -> None:
    server = services.add_own_server(alice, "docs", "https://93.184.216.34/mcp")
    client = signed_in(alice)
    confirm = client.get(f"/accounts/profile/tools/{server.pk}/remove/")
    assert confirm.status_code == 200
    assert McpServer.objects.filter(pk=server.pk).exists()
    assert client.post(f"/accounts/profile/tools/{server.pk}/remove/").status_code == 302
    assert not McpServer.objects.filter(pk=server.pk).exists()


def test_the_pages_need_a_login(alice: User) -> None:
    server = services.add_own_server(alice, "docs", "https://93.184.216.34/mcp")
    anonymous = Client()
    assert anonymous.post("/accounts/profile/tools/", {"mcp-name": "x"}).status_code == 302
    assert anonymous.post(f"/accounts/profile/tools/{server.pk}/test/").status_code == 302
    assert not McpServer.objects.filter(name="x").exists()
