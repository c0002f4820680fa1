from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework import routers

import api.schema  # noqa: F401  (registers the bearer-key scheme with drf-spectacular)
from accounts.api import ApiKeyViewSet
from api import views
from conversations.api import ConversationViewSet
from conversations.project_api import ProjectViewSet
from conversations.share_api import ShareViewSet
from core.errors import not_found
from usage.api import DailyUsageView, UsageView

app_name = "api"


class Router(routers.DefaultRouter):
    APIRootView = views.Root
    include_format_suffixes = False


router = Router(use_regex_path=False)
router.register("conversations", ConversationViewSet, basename="conversation")
router.register("keys", ApiKeyViewSet, basename="key")
router.register("projects", ProjectViewSet, basename="project")
router.register("shares", ShareViewSet, basename="share")

urlpatterns = [
    path("usage/", UsageView.as_view(), name="usage"),
    path("usage/daily/", DailyUsageView.as_view(), name="usage-daily"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", views.docs, name="docs"),
    *router.urls,
    re_path(r"", not_found),
]
