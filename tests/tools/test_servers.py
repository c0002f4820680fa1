"""MCP servers: who may use which, headers encrypted and bound to their URL, the admin's pages and `manage.py mcp`."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError
from django.test import Client

from accounts.keys import create_key
from accounts.models import User
from tests.live_server import ROOT
from tools import services
from tools.models import KeyTools, McpServer

TOKEN = "Bearer mcp-very-secret-token-123"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def names(user: User) -> set[str]:
    return set(services.servers_for(user).values_list("name", flat=True))


def test_a_user_sees_their_own_servers_and_the_global_ones_open_to_them(alice: User, bob: User) -> None:
    services.add_own_server(alice, "alices", "https://alice.example/mcp", {"Authorization": TOKEN})
    McpServer.objects.create(name="for-all", url="https://all.example/mcp", everyone=True)
    McpServer.objects.create(name="closed", url="https://closed.example/mcp")
    for_bob = McpServer.objects.create(name="for-bob", url="https://bob.example/mcp")
    for_bob.allowed_users.add(bob)
    staff = Group.objects.create(name="staff")
    for_staff = McpServer.objects.create(name="for-staff", url="https://staff.example/mcp")
    for_staff.allowed_groups.add(staff)
    McpServer.objects.create(name="off", url="https://off.example/mcp", everyone=True, enabled=False)
    assert names(alice) == {"alices", "for-all"}
    assert names(bob) == {"for-all", "for-bob"}
    alice.groups.add(staff)
    assert names(alice) == {"alices", "for-all", "for-staff"}


def test_another_users_server_is_invisible_and_unusable(alice: User, bob: User) -> None:
    server = services.add_own_server(alice, "alices", "https://alice.example/mcp", {"Authorization": TOKEN})
    assert "alices" not in names(bob)
    with pytest.raises(McpServer.DoesNotExist):
        services.update_own_server(bob, server.pk, url="https://bob.example/steal")
    with pytest.raises(McpServer.DoesNotExist):
        services.remove_own_server(bob, server.pk)
    server.refresh_from_db()
    assert (server.url, server.get_headers()) == ("https://alice.example/mcp", {"Authorization": TOKEN})


def test_a_user_cannot_change_a_global_servers_url(alice: User) -> None:
    server = McpServer.objects.create(name="for-all", url="https://all.example/mcp", everyone=True)
    with pytest.raises(McpServer.DoesNotExist):
        services.update_own_server(alice, server.pk, url="https://evil.example/mcp")
    server.refresh_from_db()
    assert server.url == "https://all.example/mcp"


def test_headers_are_stored_encrypted_and_dropped_when_the_url_changes_without_them(alice: User) -> None:
    server = services.add_own_server(alice, "alices", "https://alice.example/mcp", {"Authorization": TOKEN})
    raw = McpServer.objects.values_list("headers_encrypted", flat=True).get(pk=server.pk)
    assert "mcp-very-secret" not in raw and raw
    moved = services.update_own_server(alice, server.pk, url="https://elsewhere.example/mcp")
    assert moved.secret_dropped and moved.get_headers() == {}
    kept = services.update_own_server(alice, server.pk, url="https://third.example/mcp", headers={"X-Key": "k"})
    assert kept.get_headers() == {"X-Key": "k"}


def test_a_users_own_server_can_never_be_allowed_internal_addresses(alice: User) -> None:
    server = services.add_own_server(alice, "alices", "https://alice.example/mcp")
    server.allow_internal = True
    with pytest.raises(IntegrityError):
        server.save()


@pytest.mark.parametrize(
    ("name", "url", "message"),
    [("bad name", "https://x.example/mcp", "invalid name"), ("ok", "file:///etc/passwd", "http or https URL")],
)
def test_a_bad_server_is_refused_with_a_reason(alice: User, name: str, url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        services.add_own_server(alice, name, url)


@pytest.mark.parametrize("header", ["no colon", ": value", "Bad Name: v", "Name:", "Name: a\nb"])
def test_a_bad_header_is_refused_without_echoing_its_value(header: str) -> None:
    with pytest.raises(ValidationError) as refused:
        services.parse_header(header)
    assert "a\nb" not in str(refused.value)


@pytest.mark.django_db
def test_mcp_add_is_idempotent_and_never_prints_header_values() -> None:
    out = run("mcp", "add", "search", "--url", "https://mcp.example/mcp", "--header", f"Authorization: {TOKEN}")
    assert "created MCP server search" in out
    out = run(
        "mcp",
        "add",
        "search",
        "--url",
        "https://mcp.example/mcp",
        "--header",
        f"Authorization: {TOKEN}",
        "--header",
        "X-Team: blue",
    )
    assert "updated MCP server search" in out
    server = McpServer.objects.get()
    assert (server.everyone, server.owner, server.allow_internal) == (True, None, False)
    assert server.get_headers() == {"Authorization": TOKEN, "X-Team": "blue"}
    listing = run("mcp", "list")
    assert "search\thttps://mcp.example/mcp\tstreamable_http\teveryone\tAuthorization,X-Team" in listing
    assert "mcp-very-secret" not in listing + out


@pytest.mark.django_db
def test_mcp_add_allow_internal_and_a_new_url_without_headers_drops_them() -> None:
    run("mcp", "add", "local", "--url", "https://a.example/mcp", "--header", "X-Key: k1")
    out = run("mcp", "add", "local", "--url", "http://127.0.0.1:9000/mcp", "--allow-internal", "--transport", "sse")
    assert "internal addresses allowed" in out and "headers of local were removed" in out
    server = McpServer.objects.get()
    assert (server.allow_internal, server.transport, server.get_headers()) == (True, "sse", {})


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad name", "--url", "https://x.example/mcp"], "invalid name"),
        (["ok", "--url", "ftp://x.example/mcp"], "http or https URL"),
        (["ok", "--url", "https://x.example/mcp", "--header", "secret-without-colon"], "'Name: value'"),
    ],
)
def test_mcp_add_refuses_bad_input_with_a_reason(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("mcp", "add", *args)
    assert not McpServer.objects.exists()


def test_a_bad_mcp_command_exits_non_zero_with_one_line_and_no_header_value() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "mcp", "add", "ok", "--url", "https://x.example/mcp", "--header", "tok3n-value"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "'Name: value'" in result.stderr
    assert "tok3n-value" not in result.stderr + result.stdout


@pytest.fixture
def admin_client(client: Client, admin: User) -> Client:
    client.force_login(admin)
    return client


def test_the_admin_stores_headers_encrypted_and_never_shows_them(admin_client: Client, alice: User) -> None:
    form = {
        "name": "global",
        "url": "https://g.example/mcp",
        "transport": "streamable_http",
        "enabled": "on",
        "everyone": "on",
        "headers": f"Authorization: {TOKEN}",
    }
    response = admin_client.post("/admin/tools/mcpserver/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    server = McpServer.objects.get()
    assert server.get_headers() == {"Authorization": TOKEN} and server.owner is None
    page = admin_client.get(f"/admin/tools/mcpserver/{server.pk}/change/").content.decode()
    listing = admin_client.get("/admin/tools/mcpserver/").content.decode()
    assert "mcp-very-secret" not in page + listing
    assert server.headers_encrypted not in page
    admin_client.post(f"/admin/tools/mcpserver/{server.pk}/change/", {**form, "headers": ""})
    server.refresh_from_db()
    assert server.get_headers() == {"Authorization": TOKEN}
    admin_client.post(f"/admin/tools/mcpserver/{server.pk}/change/", {**form, "headers": "", "clear_headers": "on"})
    server.refresh_from_db()
    assert server.get_headers() == {}


def test_the_admin_cannot_change_a_users_own_server(admin_client: Client, alice: User) -> None:
    server = services.add_own_server(alice, "alices", "https://alice.example/mcp", {"Authorization": TOKEN})
    page = admin_client.get(f"/admin/tools/mcpserver/{server.pk}/change/").content.decode()
    assert "mcp-very-secret" not in page
    admin_client.post(
        f"/admin/tools/mcpserver/{server.pk}/change/",
        {"name": "alices", "url": "http://127.0.0.1/", "transport": "sse", "allow_internal": "on"},
    )
    server.refresh_from_db()
    assert (server.url, server.allow_internal) == ("https://alice.example/mcp", False)


def test_the_admin_narrows_a_key_to_fewer_tools_and_is_told_a_bad_list(admin_client: Client, alice: User) -> None:
    key, _secret = create_key(alice, "scripts")
    form = {"key": key.pk, "fetch": "on", "mcp_servers": '"docs"'}
    page = admin_client.post("/admin/tools/keytools/add/", form).content.decode()
    assert "A list of server names" in page
    assert not KeyTools.objects.exists()
    admin_client.post("/admin/tools/keytools/add/", {**form, "mcp_servers": '["docs"]'})
    grant = KeyTools.objects.get(key=key)
    assert (grant.web_search, grant.fetch, grant.mcp_servers) == (False, True, ["docs"])
