from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from chatsite import views
from operations import views as operations_views
from usage import views as usage_views

urlpatterns = [
    # The API first: every /v1 request resolves its path, and no pattern below overlaps these.
    path("v1/", include("gateway.urls")),
    path("v1beta/", include("gateway.gemini_api.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", operations_views.metrics, name="metrics"),
    # One sign-in page for everyone, with its lockouts, rate limits and two-factor step.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
    path("accounts/groups/<int:group_id>/usage/", usage_views.group_usage, name="group_usage"),
    path("accounts/groups/<int:group_id>/usage.csv", usage_views.group_usage_csv, name="group_usage_csv"),
    path("accounts/groups/<int:group_id>/analytics/", usage_views.group_analytics, name="group_analytics"),
    path(
        "accounts/groups/<int:group_id>/analytics.csv",
        usage_views.group_analytics_csv,
        name="group_analytics_csv",
    ),
    path("analytics/", usage_views.site_analytics, name="analytics"),
    path("analytics.csv", usage_views.site_analytics_csv, name="analytics_csv"),
    path("accounts/profile/tools/", include("tools.urls")),
    path("accounts/", include("accounts.urls")),
    path("api/", include("api.urls")),
    path("", include("conversations.urls")),
]
