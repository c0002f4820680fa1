"""The REST API of a user's projects (/api/projects/...): list, create, change, delete.

Another user's project is a 404, as if it did not exist; deleting a project keeps its conversations
(they move out of it).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from catalogue.models import LanguageModel
from conversations import projects, services
from conversations.models import Project
from core.rest import Private


class ProjectSerializer(serializers.ModelSerializer[Project]):
    model: serializers.SlugRelatedField[LanguageModel] = serializers.SlugRelatedField(
        slug_field="public_id", read_only=True, allow_null=True
    )
    conversation_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Project
        fields = ["id", "name", "model", "system_prompt", "tools", "conversation_count", "created_at"]
        read_only_fields = fields


class ProjectInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=projects.NAME_CHARS)
    model = serializers.CharField(required=False, allow_blank=True, max_length=200)
    system_prompt = serializers.CharField(required=False, allow_blank=True, max_length=20_000, trim_whitespace=False)
    tools = serializers.JSONField(
        required=False,
        help_text='The tools its new conversations start with: {"web_search": true, "fetch": true, '
        '"mcp_servers": ["name"]}.',
    )


def project_data(project: Project) -> dict[str, Any]:
    return dict(ProjectSerializer(project).data)


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _refused(exc: services.ChatError) -> Exception:
    if isinstance(exc, projects.ProjectGone):
        return NotFound()
    return ValidationError({exc.param or "non_field_errors": [str(exc)]})


@extend_schema_view(
    list=extend_schema(summary="Your projects, by name"),
    retrieve=extend_schema(summary="One project"),
    create=extend_schema(summary="Make a project", request=ProjectInput),
    partial_update=extend_schema(summary="Rename it, or change its model or system prompt", request=ProjectInput),
    destroy=extend_schema(summary="Delete it (its conversations stay, outside any project)"),
)
class ProjectViewSet(Private, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Project]):
    serializer_class = ProjectSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    lookup_value_converter = "int"
    pagination_class = None  # at most projects.MAX_PROJECTS

    def get_queryset(self) -> QuerySet[Project]:
        if getattr(self, "swagger_fake_view", False):
            return Project.objects.none()
        return projects.projects_for(_user(self.request))

    def _input(self, partial: bool) -> dict[str, Any]:
        data = ProjectInput(data=self.request.data, partial=partial)
        data.is_valid(raise_exception=True)
        return dict(data.validated_data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            project = projects.create(_user(request), **self._input(partial=False))
        except services.ChatError as exc:
            raise _refused(exc) from None
        return Response(project_data(project), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        project = self.get_object()
        try:
            project = projects.update(_user(request), project.pk, **self._input(partial=True))
        except services.ChatError as exc:
            raise _refused(exc) from None
        return Response(project_data(self.get_queryset().get(pk=project.pk)))

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        project = self.get_object()
        projects.delete(_user(request), project.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
