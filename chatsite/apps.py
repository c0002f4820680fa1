from django.apps import AppConfig


class ChatsiteConfig(AppConfig):
    name = "chatsite"

    def ready(self) -> None:
        from chatsite import checks  # noqa: F401  (registers the checks)
