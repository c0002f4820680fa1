"""The profile's "Tools" section: a user's own MCP servers (add, test, remove) and the shared ones they may use.

Another user's server does not exist here (404), and a global one is only tested, never changed. "Test"
lists a server's tools over the network through the SSRF guard; nothing here ever starts a process.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from tools import mcp_client, services
from tools.forms import OwnServerForm
from tools.models import McpServer
from tools.results import ToolError

FORM_PREFIX = "mcp"


def _back() -> HttpResponse:
    return redirect(reverse("profile") + "#tools-heading")


@never_cache
@login_required
@require_POST
def add_server(request: HttpRequest) -> HttpResponse:
    form = OwnServerForm(request.POST, prefix=FORM_PREFIX)
    if form.is_valid():
        data = form.cleaned_data
        try:
            server = services.add_own_server(
                request.user, data["name"], data["url"], data["headers"], data["transport"]
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages[0])
        else:
            messages.success(request, f"The MCP server {server.name} is added: “Test” lists its tools.")
            return _back()
    return render(request, "tools/add_server.html", {"form": form}, status=400)


@never_cache
@login_required
@require_POST
def test_server(request: HttpRequest, server_id: int) -> HttpResponse:
    """The server's tools as the chat would offer them, or why it cannot be reached."""
    server = services.servers_for(request.user).filter(pk=server_id).first()
    if server is None:
        raise Http404("No such MCP server.")
    listed: list[Any] = []
    error = ""
    try:
        # Fresh: a test says how the server is now, not what an earlier listing found.
        listed = async_to_sync(mcp_client.list_tools)(server.endpoint(), fresh=True)
    except ToolError as exc:
        error = str(exc)
    context = {"server": server, "tools": listed, "error": error}
    return render(request, "tools/test_server.html", context, status=200 if not error else 502)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def remove_server(request: HttpRequest, server_id: int) -> HttpResponse:
    """GET asks for confirmation; POST removes. Another user's server, or a global one, answers 404."""
    try:
        server = services.own_server(request.user, server_id)
    except McpServer.DoesNotExist:
        raise Http404("No such MCP server.") from None
    if request.method == "POST":
        server.delete()
        messages.success(request, f"The MCP server {server.name} is removed.")
        return _back()
    return render(request, "tools/remove_server.html", {"server": server})
