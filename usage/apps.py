from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage and limits"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from accounts.services import annotate_own_keys
        from usage.limits import config_changed
        from usage.models import Limit
        from usage.queries import with_usage

        # Each key's requests and tokens, wherever its owner lists their keys (profile, /api/keys/).
        annotate_own_keys("usage", with_usage)

        def changed(**kwargs: object) -> None:
            config_changed()

        # Cached limit settings are dropped here and, through the counter store, on other workers.
        post_save.connect(changed, sender=Limit, dispatch_uid="usage-limit-saved", weak=False)
        post_delete.connect(changed, sender=Limit, dispatch_uid="usage-limit-deleted", weak=False)
