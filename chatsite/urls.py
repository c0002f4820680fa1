from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from chatsite import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    # One sign-in page for everyone, with its lockouts, rate limits and two-factor step.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("v1/", include("gateway.urls")),
    path("api/", include("api.urls")),
    path("", include("conversations.urls")),
]
