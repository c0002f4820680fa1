from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from allauth.account.signals import user_logged_in
        from django.contrib.auth.models import Group
        from django.db.models.signals import pre_delete

        from accounts.auth import sync_groups_claim
        from accounts.groups import retire_service_user

        user_logged_in.connect(sync_groups_claim, dispatch_uid="accounts-sso-groups")
        pre_delete.connect(retire_service_user, sender=Group, dispatch_uid="accounts-group-service-user")
