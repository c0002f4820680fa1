from django.contrib import admin
from django.urls import include, path

from chatsite import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("v1/", include("gateway.urls")),
    path("api/", include("api.urls")),
    path("", include("conversations.urls")),
]
