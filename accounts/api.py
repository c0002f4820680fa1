"""The REST API of a user's own API keys (/api/keys/...): list, create (the secret in that answer only), revoke.

A key may read the list but not mint or revoke keys: a key scoped to one model, or about to
expire, must not be able to issue itself an unscoped, everlasting successor. Those need the
browser's session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import services
from accounts.api_auth import authenticated_by_key
from accounts.groups import usable_models_for
from accounts.models import ApiKey, User
from core.rest import Private


class ApiKeySerializer(serializers.ModelSerializer[ApiKey]):
    display = serializers.CharField(read_only=True, help_text="The key as shown: its prefix and last four characters.")
    status = serializers.SerializerMethodField(help_text="active, revoked or expired")
    requests = serializers.IntegerField(read_only=True, default=0, help_text="Requests made with it (usage ledger).")
    tokens = serializers.IntegerField(read_only=True, default=0, help_text="Tokens used with it (usage ledger).")

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "display",
            "allowed_models",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "status",
            "requests",
            "tokens",
        ]
        read_only_fields = fields

    def get_status(self, key: ApiKey) -> str:
        return services.key_status(key)


class NewApiKeySerializer(ApiKeySerializer):
    key = serializers.SerializerMethodField(help_text="The secret. Shown in this answer only, never again.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields

    def get_key(self, key: ApiKey) -> str:
        return str(self.context["secret"])


class ApiKeyInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Optional; in the future.")
    allowed_models = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        max_length=200,
        help_text="Model ids the key may call; empty or absent: every enabled model.",
    )

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The name may not be blank.")
        return value

    def validate_expires_at(self, value: datetime | None) -> datetime | None:
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Choose a moment in the future.")
        return value

    def validate_allowed_models(self, value: list[str]) -> list[str]:
        usable = usable_models_for(self.context["user"])
        known = set(usable.filter(public_id__in=value).values_list("public_id", flat=True))
        unknown = [model for model in value if model not in known]
        if unknown:
            raise serializers.ValidationError(f"Unknown or disabled models: {', '.join(unknown)}.")
        return list(dict.fromkeys(value))


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _session_only(request: Request, what: str) -> None:
    if authenticated_by_key(request):
        raise PermissionDenied(f"An API key cannot {what}; sign in on the profile page.")


@extend_schema_view(
    list=extend_schema(summary="Your API keys, newest first (never their secrets)"),
    retrieve=extend_schema(summary="One of your API keys"),
    create=extend_schema(
        summary="Create a key (browser session only); the answer carries its secret, once",
        request=ApiKeyInput,
        responses={201: NewApiKeySerializer},
    ),
)
class ApiKeyViewSet(
    Private,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[ApiKey],
):
    serializer_class = ApiKeySerializer
    lookup_value_converter = "int"

    def get_queryset(self) -> QuerySet[ApiKey]:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular reading the view, with no user
            return ApiKey.objects.none()
        return services.own_keys(_user(self.request))

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        _session_only(request, "create keys")
        data = ApiKeyInput(data=request.data, context={"user": _user(request)})
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        key, secret = services.issue_key(
            _user(request),
            fields["name"],
            expires_at=fields.get("expires_at"),
            allowed_models=fields.get("allowed_models") or [],
        )
        return Response(NewApiKeySerializer(key, context={"secret": secret}).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke a key at once (browser session only)", request=None, responses=ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        _session_only(request, "revoke keys")
        key = self.get_object()
        services.revoke_own_key(_user(request), key.pk)
        return Response(ApiKeySerializer(self.get_queryset().get(pk=key.pk)).data)
