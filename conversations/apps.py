from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversations import files, knowledge, sessions

        sessions.connect_signals()
        files.connect_signals()
        knowledge.connect_signals()
