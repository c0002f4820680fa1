"""The REST API of a user's share links (/api/shares/...): list and revoke. A link is made from its
conversation: POST /api/conversations/{id}/share/. Another user's share is a 404."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from conversations import shares
from conversations.models import Share
from core.rest import Private


class ShareSerializer(serializers.ModelSerializer[Share]):
    """A share as its owner sees it. The link itself is in the answer that made it, and never again."""

    class Meta:
        model = Share
        fields = ["id", "conversation", "title", "created_at"]
        read_only_fields = fields


class NewShareSerializer(ShareSerializer):
    link = serializers.SerializerMethodField(help_text="The share's address; shown this once.")

    class Meta(ShareSerializer.Meta):
        fields = [*ShareSerializer.Meta.fields, "link"]
        read_only_fields = fields

    def get_link(self, share: Share) -> str:
        request = self.context["request"]
        return str(request.build_absolute_uri(reverse("shared", args=[self.context["token"]])))


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


@extend_schema_view(
    list=extend_schema(summary="Your share links, newest first"),
    destroy=extend_schema(summary="Revoke a share link: it answers 404 from now on"),
)
class ShareViewSet(Private, mixins.ListModelMixin, viewsets.GenericViewSet[Share]):
    serializer_class = ShareSerializer
    http_method_names = ["get", "delete", "head", "options"]
    lookup_value_converter = "int"

    def get_queryset(self) -> QuerySet[Share]:
        if getattr(self, "swagger_fake_view", False):
            return Share.objects.none()
        return shares.shares_of(_user(self.request))

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not shares.revoke(_user(request), int(kwargs["pk"])):
            raise NotFound()
        return Response(status=status.HTTP_204_NO_CONTENT)
