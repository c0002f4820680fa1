from __future__ import annotations

import argparse
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from catalogue.health_report import describe
from catalogue.models import Deployment, Fallback, LanguageModel, Provider

# The catalogue's descriptive text fields, each a `models add` flag (`--display-name` for display_name).
DESCRIPTIVE = (
    "description",
    "display_name",
    "creator",
    "creator_logo_url",
    "censorship",
    "license_name",
    "license_url",
    "docs_url",
    "prompt_guide_url",
)


def _natural(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of 0 or more, got {value!r}")
    return number


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
        _catalogue_arguments(sub)
        _routing_arguments(sub)
        _cache_arguments(sub)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "add":
            self._add(options)
        elif action == "route":
            self._route(options)
        elif action == "health":
            self._health(options.get("model_id"))
        elif action == "restrict":
            self._restrict(options["model_id"], options["groups"])
        elif action == "fallback":
            self._fallback(options["model_id"], options["to"], options["context"])
        elif action == "cache":
            self._cache(options)
        elif action == "routing":
            self._routing(options["model_id"], options["strategy"])
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
        if options["kind"]:
            model.kind = options["kind"]
        for name in ("vision", "tools", "reasoning", "json_output"):
            if options[name] is not None:
                setattr(model, name, options[name])
        for name in DESCRIPTIVE:
            if options[name] is not None:
                setattr(model, name, options[name].strip())
        try:
            model.full_clean(exclude=["provider", "created_at"], validate_unique=False)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
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
            state = "enabled" if m.usable else "disabled"
            more = m.deployments.count() - 1
            routes = f"{m.provider.name}/{m.upstream_model}" + (f" (+{more} more)" if more > 0 else "")
            self.stdout.write(
                f"{m.public_id}\t{routes}\tcontext {m.context_length}\tmax output {m.max_output_tokens}\t{state}"
            )

    def _route(self, options: dict[str, Any]) -> None:
        model = LanguageModel.objects.filter(public_id=options["model_id"]).first()
        if model is None:
            raise CommandError(f"no model {options['model_id']!r} (add it with: models add)")
        provider = Provider.objects.filter(name=options["provider"]).first()
        if provider is None:
            raise CommandError(f"no provider named {options['provider']!r} (add it with: providers add)")
        upstream_model = (options["upstream_model"] or model.upstream_model).strip()
        if not upstream_model or len(upstream_model) > 200:
            raise CommandError("--upstream-model must have 1 to 200 characters")
        deployment, created = Deployment.objects.get_or_create(
            model=model, provider=provider, upstream_model=upstream_model
        )
        if options["priority"] is not None:
            deployment.priority = options["priority"]
        if options["weight"] is not None:
            deployment.weight = options["weight"]
        if options["max_concurrent"] is not None:
            deployment.max_concurrent = options["max_concurrent"] or None
        deployment.enabled = not options["disable"]
        deployment.save()
        cap = deployment.max_concurrent or "no cap"
        self.stdout.write(
            f"{'added' if created else 'updated'} deployment {model.public_id} -> {provider.name}/{upstream_model} "
            f"(priority {deployment.priority}, weight {deployment.weight}, max concurrent {cap}, "
            f"{'enabled' if deployment.enabled else 'disabled'})"
        )

    def _health(self, model_id: str | None) -> None:
        deployments = Deployment.objects.select_related("model", "provider").order_by("model__public_id", "priority")
        if model_id:
            if not LanguageModel.objects.filter(public_id=model_id).exists():
                raise CommandError(f"no model {model_id!r}")
            deployments = deployments.filter(model__public_id=model_id)
        rows = list(deployments)
        if not rows:
            self.stdout.write("no deployments")
            return
        for row in describe(rows):
            self.stdout.write("\t".join(row))

    def _restrict(self, model_id: str, names: str | None) -> None:
        model = LanguageModel.objects.filter(public_id=model_id).first()
        if model is None:
            raise CommandError(f"no model {model_id!r}")
        if names is None:
            model.groups.clear()
            self.stdout.write(f"model {model_id} is open to everyone")
            return
        wanted = list(dict.fromkeys(name.strip() for name in names.split(",") if name.strip()))
        if not wanted:
            raise CommandError("--groups needs at least one group name")
        groups = list(Group.objects.filter(name__in=wanted).order_by("name"))
        unknown = sorted(set(wanted) - {group.name for group in groups})
        if unknown:
            raise CommandError(f"no group named {', '.join(map(repr, unknown))} (add it with: groups add)")
        model.groups.set(groups)
        self.stdout.write(f"model {model_id} is restricted to {', '.join(group.name for group in groups)}")

    def _fallback(self, model_id: str, to: str | None, context: bool) -> None:
        model = LanguageModel.objects.filter(public_id=model_id).first()
        if model is None:
            raise CommandError(f"no model {model_id!r}")
        reason = Fallback.Reason.CONTEXT if context else Fallback.Reason.FAILURE
        wanted = list(dict.fromkeys(name.strip() for name in (to or "").split(",") if name.strip()))
        if to is not None and not wanted:
            raise CommandError("--to needs at least one model id")
        if model_id in wanted:
            raise CommandError(f"model {model_id} cannot be its own fallback")
        found = {m.public_id: m for m in LanguageModel.objects.filter(public_id__in=wanted)}
        unknown = [name for name in wanted if name not in found]
        if unknown:
            raise CommandError(f"no model {', '.join(map(repr, unknown))}")
        with transaction.atomic():
            model.fallbacks.filter(reason=reason).delete()
            Fallback.objects.bulk_create(
                Fallback(model=model, to=found[name], reason=reason, position=i) for i, name in enumerate(wanted)
            )
        what = "context-window fallbacks" if context else "fallbacks"
        self.stdout.write(f"model {model_id} {what}: {', '.join(wanted) if wanted else 'none'}")

    def _cache(self, options: dict[str, Any]) -> None:
        model = LanguageModel.objects.filter(public_id=options["model_id"]).first()
        if model is None:
            raise CommandError(f"no model {options['model_id']!r}")
        model.cache_ttl_seconds = 0 if options["off"] else options["ttl"]
        if options["shared"] is not None:
            model.cache_shared = options["shared"]
        if options["unsafe"] is not None:
            model.cache_unsafe = options["unsafe"]
        if options["count_hits"] is not None:
            model.cache_hits_limited = options["count_hits"]
        model.save(update_fields=["cache_ttl_seconds", "cache_shared", "cache_unsafe", "cache_hits_limited"])
        if not model.cache_ttl_seconds:
            self.stdout.write(f"model {model.public_id}: answers are not cached")
            return
        scope = "shared by every user" if model.cache_shared else "per user"
        limited = "hits count against rate limits" if model.cache_hits_limited else "hits are free of rate limits"
        ttl = model.cache_ttl_seconds
        self.stdout.write(f"model {model.public_id}: answers cached for {ttl} s, {scope}, {limited}")

    def _routing(self, model_id: str, strategy: str | None) -> None:
        model = LanguageModel.objects.filter(public_id=model_id).first()
        if model is None:
            raise CommandError(f"no model {model_id!r}")
        if strategy is not None:
            model.routing = strategy
            model.save(update_fields=["routing"])
        self.stdout.write(f"model {model.public_id} routing: {model.get_routing_display()}")


def _catalogue_arguments(sub: Any) -> None:
    """add, route, health, list, restrict."""
    add = sub.add_parser("add", help="Add a model, or update the one with this id.")
    add.add_argument("model_id", help="The public id clients send (may contain '/').")
    add.add_argument("--provider", required=True, help="Name of the provider serving it.")
    add.add_argument("--upstream-model", help="The provider's name for it (default: MODEL_ID).")
    add.add_argument("--context-length", type=_positive)
    add.add_argument("--max-output-tokens", type=_positive)
    add.add_argument("--kind", choices=[k.value for k in LanguageModel.Kind], help="chat (default), text or embedding")
    for flag, what in (("vision", "images in messages"), ("tools", "tools (function calling)"),
                       ("reasoning", "reasoning (thinks before answering)"),
                       ("json-output", "response_format json_object / json_schema")):  # fmt: skip
        add.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, help=f"whether it accepts {what}")
    for field in DESCRIPTIVE:
        add.add_argument(f"--{field.replace('_', '-')}")
    route = sub.add_parser("route", help="Add or update one deployment of a model (another upstream serving it).")
    route.add_argument("model_id")
    route.add_argument("--provider", required=True, help="Name of the provider of this deployment.")
    route.add_argument("--upstream-model", help="The provider's name for it (default: the model's upstream name).")
    route.add_argument("--priority", type=_natural, help="Lower is tried first (default 0).")
    route.add_argument("--weight", type=_positive, help="Share of traffic within its priority (default 1).")
    route.add_argument("--max-concurrent", type=_natural, help="Requests in flight at most per worker (0: no cap).")
    route.add_argument("--disable", action="store_true", help="Keep the deployment but route nothing to it.")
    health = sub.add_parser("health", help="Each deployment's state: healthy, cooling down until ..., disabled.")
    health.add_argument("model_id", nargs="?")
    sub.add_parser("list", help="List the catalogue.")
    restrict = sub.add_parser("restrict", help="Who may use a model: members of some groups, or everyone.")
    restrict.add_argument("model_id")
    who = restrict.add_mutually_exclusive_group(required=True)
    who.add_argument("--groups", metavar="NAME[,NAME...]", help="Only members of these groups.")
    who.add_argument("--everyone", action="store_true", help="Everyone (lifts a restriction).")


def _routing_arguments(sub: Any) -> None:
    """fallback, routing."""
    fallback = sub.add_parser("fallback", help="Other models to try, in order, when this one cannot answer.")
    fallback.add_argument("model_id")
    to = fallback.add_mutually_exclusive_group(required=True)
    to.add_argument("--to", metavar="MODEL_ID[,MODEL_ID...]", help="The fallbacks, in order (replaces the list).")
    to.add_argument("--none", action="store_true", help="No fallbacks (clears the list).")
    fallback.add_argument(
        "--context",
        action="store_true",
        help="The list for requests that do not fit the model's context (default: when every deployment fails).",
    )
    routing = sub.add_parser("routing", help="How a deployment is chosen within the best priority.")
    routing.add_argument("model_id")
    routing.add_argument(
        "--strategy",
        choices=[r.value for r in LanguageModel.Routing],
        help="priority: fewest in flight per weight; latency: lowest measured time to first token "
        "(default: show the model's strategy).",
    )


def _cache_arguments(sub: Any) -> None:
    cache = sub.add_parser("cache", help="The exact-match response cache for a model.")
    cache.add_argument("model_id")
    ttl = cache.add_mutually_exclusive_group(required=True)
    ttl.add_argument("--ttl", type=_positive, metavar="SECONDS", help="Keep answers this long.")
    ttl.add_argument("--off", action="store_true", help="Cache nothing for the model.")
    cache.add_argument(
        "--shared", action=argparse.BooleanOptionalAction, help="Whether different users share cached answers."
    )
    cache.add_argument(
        "--unsafe",
        action=argparse.BooleanOptionalAction,
        help="Also cache what is never cached otherwise (n > 1 sampled, store: false, tools we run).",
    )
    cache.add_argument(
        "--count-hits",
        action=argparse.BooleanOptionalAction,
        help="Whether cached answers count against rate limits (default: they do).",
    )
