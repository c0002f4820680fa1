from django.apps import AppConfig


class ResponsesConfig(AppConfig):
    name = "responses"
    verbose_name = "Stored responses (the Responses API)"
    default_auto_field = "django.db.models.BigAutoField"
