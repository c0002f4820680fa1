from typing import Any

from django.apps import AppConfig

# Saves that change nobody's rights (the triggers ignore these columns too).
_IRRELEVANT = frozenset({"last_login", "last_used_at"})


class GatewayConfig(AppConfig):
    name = "gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.apps import apps
        from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save

        from catalogue import health_report, services
        from gateway import deployment_health, provider_models
        from gateway.embeddings.inprocess import embed_blocking
        from knowledge import embedders

        # Knowledge bases embed through the gateway, so the owner's ledger, limits and budget count it.
        embedders.register_embedder(embed_blocking)

        # The catalogue's admin and commands ask the gateway how deployments fare and what a provider offers.
        health_report.register(deployment_health.report)
        services.register_model_lister(provider_models.list_models)

        # After every migrate (and every flush, which also empties the tables): the triggers that
        # tell each worker's rights cache about changes (gateway.lookups). Sent once per app with
        # models, after all migrations ran; this app has none, so it listens for the catalogue's.
        catalogue = apps.get_app_config("catalogue")
        post_migrate.connect(_after_migrate, sender=catalogue, dispatch_uid="gateway-rights-triggers")
        # The triggers reach every worker a moment after the commit; the worker that made the
        # change also forgets at once, so its own next request already sees it.
        senders = [apps.get_model("accounts", "User"), apps.get_model("accounts", "ApiKey")]
        senders += list(apps.get_app_config("catalogue").get_models())
        for sender in senders:
            post_save.connect(_changed, sender=sender, dispatch_uid=f"gateway-rights-saved-{sender.__name__}")
            post_delete.connect(_changed, sender=sender, dispatch_uid=f"gateway-rights-deleted-{sender.__name__}")
        # Memberships and who may use a model: many-to-many rows, which save no model.
        user, model = apps.get_model("accounts", "User"), apps.get_model("catalogue", "LanguageModel")
        for through in (user.groups.through, model.groups.through):
            m2m_changed.connect(_changed, sender=through, dispatch_uid=f"gateway-rights-m2m-{through.__name__}")

        from gateway.health import CIRCUIT_METRIC, TTFT_METRIC
        from operations.observe import scrape_sources

        for metric in (CIRCUIT_METRIC, TTFT_METRIC):
            if metric not in scrape_sources:
                scrape_sources.append(metric)


def _after_migrate(using: str = "default", **kwargs: Any) -> None:
    from gateway.lookups import install_triggers, lookups

    install_triggers(using)
    lookups.invalidate()


def _changed(update_fields: frozenset[str] | None = None, using: str = "default", **kwargs: Any) -> None:
    from django.db import transaction

    from gateway.lookups import lookups

    if update_fields and set(update_fields) <= _IRRELEVANT:
        return
    lookups.invalidate()
    transaction.on_commit(lookups.invalidate, using=using)
