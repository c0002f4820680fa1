from django.apps import AppConfig
from django.conf import settings


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        from operations import observe

        observe.configure(
            metrics=settings.METRICS_ENABLED,
            tracing=bool(settings.OTEL_EXPORTER_OTLP_ENDPOINT),
            log_requests=settings.LOG_FORMAT == "json",
        )
