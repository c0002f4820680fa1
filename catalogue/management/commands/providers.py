from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import URLValidator, validate_slug

from catalogue import keysource
from catalogue.models import Provider


class Command(BaseCommand):
    help = "Manage upstream providers (OpenAI-compatible APIs, or Anthropic's Messages API)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Add a provider, or update the one with this name.")
        add.add_argument("name")
        add.add_argument("--base-url", required=True, help="Up to and including /v1, e.g. https://api.openai.com/v1")
        add.add_argument("--api-key-env", help="Name of the environment variable holding the provider's API key.")
        add.add_argument(
            "--kind",
            choices=Provider.Kind.values,
            help="The protocol the provider speaks: openai (chat completions, the default), anthropic "
            "(Messages API, e.g. --base-url https://api.anthropic.com) or gemini (Gemini API, e.g. "
            "--base-url https://generativelanguage.googleapis.com).",
        )
        sub.add_parser("list", help="List providers (never their keys).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "add":
            self._add(options["name"], options["base_url"], options["api_key_env"], options["kind"])
        else:
            self._list()

    def _add(self, name: str, base_url: str, api_key_env: str | None, kind: str | None) -> None:
        try:
            validate_slug(name)
        except ValidationError:
            raise CommandError(f"invalid provider name {name!r}: use letters, digits, '-' and '_'") from None
        try:
            URLValidator(schemes=["http", "https"])(base_url)
        except ValidationError:
            raise CommandError(f"invalid --base-url {base_url!r}: expected an http(s) URL") from None
        if api_key_env:
            reason = keysource.problem(api_key_env)
            if reason:
                raise CommandError(f"invalid --api-key-env: {reason}")
        provider = Provider.objects.filter(name=name).first()
        created = provider is None
        provider = provider or Provider(name=name)
        provider.base_url = base_url.rstrip("/")
        if api_key_env is not None:
            provider.api_key_env = api_key_env
        if kind is not None:  # an update leaves the kind as it was unless given
            provider.kind = kind
        provider.save()
        self.stdout.write(
            f"{'created' if created else 'updated'} provider {name} ({provider.base_url}, speaks {provider.kind})"
        )
        if provider.key_dropped:
            self.stdout.write(
                f"the base URL changed: the stored key of {name} was removed; enter it again in the admin"
            )

    def _list(self) -> None:
        providers = list(Provider.objects.order_by("name"))
        if not providers:
            self.stdout.write("no providers")
            return
        for p in providers:
            key = _key_source(p)
            state = "enabled" if p.enabled else "disabled"
            self.stdout.write(f"{p.name}\t{p.base_url}\t{key}\t{state}\t{p.kind}")


def _key_source(provider: Provider) -> str:
    if provider.api_key_env and not keysource.allowed(provider.api_key_env):
        return f"no key (${provider.api_key_env} is not allowed)"
    if provider.api_key_env:
        return f"key from ${provider.api_key_env}"
    return "key stored" if provider.api_key_encrypted else "no key"
