"""The profile's form for a user's own MCP server: a name, a URL, and a bearer token or a header (write-only)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError

from core.netguard import address_problem, name_problem, parse_literal
from tools import services
from tools.models import McpServer


def url_problem(url: str) -> str | None:
    """Why a user's server URL is refused before any connection: this machine, a private or metadata address.

    Only what the URL itself spells: a name is resolved, and its addresses checked, at every connection.
    """
    host = urlsplit(url).hostname or ""
    literal = parse_literal(host)
    problem = address_problem(literal) if literal is not None else name_problem(host)
    return f"{host} is {problem}: your MCP server must be on the public internet" if problem else None


class OwnServerForm(forms.Form):
    # Not "Name" (nor any label holding it): the profile's API key form above is found by that label.
    name = forms.SlugField(
        label="Server",
        max_length=64,
        help_text="Letters, digits, '-' and '_'; how the chat's Tools list names it.",
    )
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        help_text="The server's endpoint, e.g. https://mcp.example.com/mcp",
    )
    transport = forms.ChoiceField(choices=McpServer.Transport.choices, initial=McpServer.Transport.STREAMABLE_HTTP)
    token = forms.CharField(
        label="Bearer token",
        required=False,
        strip=True,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Optional. Sent as 'Authorization: Bearer …'. Stored encrypted and never shown again.",
    )
    header = forms.CharField(
        label="Or a header",
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Optional, instead of a token: 'Name: value', e.g. 'X-Api-Key: …'. Stored encrypted, never shown.",
    )

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        if urlsplit(url).scheme not in ("http", "https"):
            raise forms.ValidationError("An MCP server's URL starts with http:// or https://.")
        problem = url_problem(url)
        if problem:
            raise forms.ValidationError(problem)
        return url

    def clean_token(self) -> str:
        token: str = self.cleaned_data.get("token", "")
        if any(c in token for c in "\r\n") or " " in token:
            raise forms.ValidationError("A token is one word, without spaces or line breaks.")
        return token

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        headers: dict[str, str] = {}
        if cleaned.get("header"):
            try:
                name, value = services.parse_header(cleaned["header"])
            except ValidationError as exc:
                self.add_error("header", exc.messages[0])
                return cleaned
            headers[name] = value
        if cleaned.get("token"):
            if any(name.lower() == "authorization" for name in headers):
                self.add_error("token", "Give a token or an Authorization header, not both.")
                return cleaned
            headers["Authorization"] = f"Bearer {cleaned['token']}"
        cleaned["headers"] = headers
        return cleaned
