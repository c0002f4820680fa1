from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage and limits"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from accounts.models import User
        from accounts.services import annotate_own_keys
        from usage.limits import config_changed
        from usage.models import Limit
        from usage.queries import with_usage

        # Each key's requests and tokens, wherever its owner lists their keys (profile, /api/keys/).
        annotate_own_keys("usage", with_usage)

        def changed(**kwargs: object) -> None:
            config_changed()

        def billing_changed(update_fields: frozenset[str] | None = None, **kwargs: object) -> None:
            if update_fields is None or "default_group" in update_fields:
                config_changed()

        def memberships_changed(action: str = "", **kwargs: object) -> None:
            if action.startswith("post_"):
                config_changed()

        # Cached limit settings are dropped here and, through the counter store, on other workers;
        # so are the groups requests are billed to, when memberships or a default group change.
        post_save.connect(changed, sender=Limit, dispatch_uid="usage-limit-saved", weak=False)
        post_delete.connect(changed, sender=Limit, dispatch_uid="usage-limit-deleted", weak=False)
        memberships = User.groups.through
        m2m_changed.connect(memberships_changed, sender=memberships, dispatch_uid="usage-memberships", weak=False)
        post_save.connect(billing_changed, sender=User, dispatch_uid="usage-default-group", weak=False)
