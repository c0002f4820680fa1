from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tools import services
from tools.models import McpServer


class Command(BaseCommand):
    help = "Manage the MCP servers every user may use (header values are stored encrypted and never printed)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Add an MCP server for every user, or update the one with this name.")
        add.add_argument("name")
        add.add_argument("--url", required=True, help="The server's endpoint, e.g. https://mcp.example.com/mcp")
        add.add_argument(
            "--header",
            action="append",
            metavar="'Name: value'",
            help="A header sent to the server (a bearer token: 'Authorization: Bearer ...'); repeat for more.",
        )
        add.add_argument("--transport", choices=McpServer.Transport.values, help="streamable_http (the default) or sse")
        add.add_argument(
            "--allow-internal",
            action="store_true",
            help="The server is on this machine or the internal network, and may be reached there.",
        )
        sub.add_parser("list", help="List the MCP servers (header names only, never their values).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "add":
            self._add(options)
        else:
            self._list()

    def _add(self, options: dict[str, Any]) -> None:
        try:
            headers = dict(services.parse_header(h) for h in options["header"]) if options["header"] else None
            server, created = services.put_global_server(
                options["name"], options["url"], headers, allow_internal=options["allow_internal"]
            )
        except ValidationError as exc:
            raise CommandError(f"invalid input: {exc.messages[0]}") from None
        if options["transport"] and server.transport != options["transport"]:
            server.transport = options["transport"]
            server.save(update_fields=["transport"])
        where = "internal addresses allowed" if server.allow_internal else "public addresses only"
        self.stdout.write(f"{'created' if created else 'updated'} MCP server {server.name} ({server.url}, {where})")
        if server.secret_dropped:
            self.stdout.write(f"the URL changed: the stored headers of {server.name} were removed; give them again")

    def _list(self) -> None:
        servers = list(McpServer.objects.select_related("owner").order_by("owner_id", "name"))
        if not servers:
            self.stdout.write("no MCP servers")
            return
        for s in servers:
            scope = "everyone" if s.is_global and s.everyone else ("chosen users" if s.is_global else f"{s.owner}")
            headers = ",".join(s.header_names) or "no headers"
            state = "enabled" if s.enabled else "disabled"
            internal = "internal allowed" if s.allow_internal else "public only"
            self.stdout.write(f"{s.name}\t{s.url}\t{s.transport}\t{scope}\t{headers}\t{internal}\t{state}")
