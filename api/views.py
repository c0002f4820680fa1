"""The API's own pages: a public root listing the resources, and the schema's docs page (Swagger UI)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.utils import extend_schema
from rest_framework import routers
from rest_framework.permissions import AllowAny


@extend_schema(exclude=True)
class Root(routers.APIRootView):
    permission_classes = [AllowAny]
    authentication_classes = []


def docs(request: HttpRequest) -> HttpResponse:
    """Swagger UI from drf-spectacular-sidecar's files, started by our own script: no CDN, no inline script."""
    return render(request, "api/docs.html")
