from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalogue.models import LanguageModel, Provider


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return number


class Command(BaseCommand):
    help = "Manage the model catalogue that /v1/models lists."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Add a model, or update the one with this id.")
        add.add_argument("model_id", help="The public id clients send (may contain '/').")
        add.add_argument("--provider", required=True, help="Name of the provider serving it.")
        add.add_argument("--upstream-model", help="The provider's name for it (default: MODEL_ID).")
        add.add_argument("--context-length", type=_positive)
        add.add_argument("--max-output-tokens", type=_positive)
        sub.add_parser("list", help="List the catalogue.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "add":
            self._add(options)
        else:
            self._list()

    def _add(self, options: dict[str, Any]) -> None:
        model_id = options["model_id"].strip()
        if not model_id or len(model_id) > 200 or any(c.isspace() for c in model_id):
            raise CommandError(f"invalid model id {options['model_id']!r}: 1 to 200 characters, no spaces")
        provider = Provider.objects.filter(name=options["provider"]).first()
        if provider is None:
            raise CommandError(f"no provider named {options['provider']!r} (add it with: providers add)")
        model = LanguageModel.objects.filter(public_id=model_id).first()
        created = model is None
        model = model or LanguageModel(public_id=model_id, upstream_model=model_id)
        model.provider = provider
        if options["upstream_model"]:
            model.upstream_model = options["upstream_model"]
        if options["context_length"]:
            model.context_length = options["context_length"]
        if options["max_output_tokens"]:
            model.max_output_tokens = options["max_output_tokens"]
        if model.max_output_tokens > model.context_length:
            raise CommandError(
                f"--max-output-tokens ({model.max_output_tokens}) exceeds the context length ({model.context_length})"
            )
        model.save()
        self.stdout.write(
            f"{'created' if created else 'updated'} model {model_id} -> {provider.name}/{model.upstream_model} "
            f"(context {model.context_length}, max output {model.max_output_tokens})"
        )

    def _list(self) -> None:
        models = list(LanguageModel.objects.select_related("provider").order_by("public_id"))
        if not models:
            self.stdout.write("no models")
            return
        for m in models:
            state = "enabled" if m.enabled and m.provider.enabled else "disabled"
            self.stdout.write(
                f"{m.public_id}\t{m.provider.name}/{m.upstream_model}\tcontext {m.context_length}\t"
                f"max output {m.max_output_tokens}\t{state}"
            )
