"""/v1beta: Google's Gemini API."""

from django.urls import URLPattern, URLResolver, path, re_path

from gateway.endpoint import not_found
from gateway.gemini_api.views import GEMINI_METHOD, model, model_method, models

urlpatterns: list[URLPattern | URLResolver] = [
    path("models", models, name="v1beta-models"),
    re_path(GEMINI_METHOD, model_method, name="v1beta-model-method"),
    path("models/<path:model>", model, name="v1beta-model"),
    # Anything else under /v1beta gets a 404 in Google's error shape, not an HTML page.
    re_path(r"^(?P<rest>.*)$", not_found),
]
