from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from allauth.account.signals import user_logged_in

        from accounts.auth import sync_groups_claim

        user_logged_in.connect(sync_groups_claim, dispatch_uid="accounts-sso-groups")
