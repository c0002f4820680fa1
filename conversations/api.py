"""The REST API of a user's conversations and their messages (/api/conversations/...).

Views parse and dispatch: reading goes through owner-only querysets (another user's conversation
is a 404, as if it did not exist), changing through conversations.actions, which also tells the
conversation's open sockets.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from accounts.models import User
from api.base import Private
from chatsite.inputs import BadInput
from conversations import actions, branches, services
from conversations.models import Conversation
from conversations.serializers import ConversationInput, ConversationSerializer, MessageSerializer


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _refused(exc: services.ChatError) -> Exception:
    if isinstance(exc, services.ConversationGone):
        return NotFound()
    return ValidationError({exc.param or "non_field_errors": [str(exc)]})


BRANCHES = OpenApiParameter(
    "branches", str, enum=["active", "all"], description="active (the default): the branch shown; all: every message."
)
SEARCH = OpenApiParameter("q", str, description="Only conversations whose title or messages contain this text.")


@extend_schema_view(
    list=extend_schema(summary="Your conversations, most recently active first", parameters=[SEARCH]),
    retrieve=extend_schema(summary="One conversation"),
    create=extend_schema(summary="Start a conversation", request=ConversationInput),
    partial_update=extend_schema(summary="Rename it, or change its model or system prompt", request=ConversationInput),
    destroy=extend_schema(summary="Delete it and its messages (a reply being written stops)"),
)
class ConversationViewSet(
    Private,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Conversation],
):
    serializer_class = ConversationSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    lookup_value_converter = "int"

    def get_queryset(self) -> QuerySet[Conversation]:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular reading the view, with no user
            return Conversation.objects.none()
        try:
            return services.conversations_for(
                _user(self.request), self.request.query_params.get("q", "")
            ).select_related("model")
        except BadInput as exc:
            raise ValidationError({"q": [str(exc)]}) from None

    def _input(self, partial: bool) -> dict[str, Any]:
        data: BaseSerializer[Any] = ConversationInput(data=self.request.data, partial=partial)
        data.is_valid(raise_exception=True)
        return dict(data.validated_data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        fields = self._input(partial=False)
        try:
            conversation = actions.do_create(_user(request), **fields)
        except services.ChatError as exc:
            raise _refused(exc) from None
        return Response(ConversationSerializer(conversation).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        conversation = self.get_object()
        fields = self._input(partial=True)
        try:
            conversation = actions.do_update(_user(request), conversation.pk, **fields)
        except services.ChatError as exc:
            raise _refused(exc) from None
        return Response(ConversationSerializer(conversation).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        conversation = self.get_object()
        try:
            actions.do_delete(_user(request), conversation.pk)
        except services.ChatError as exc:
            raise _refused(exc) from None
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="The conversation's messages on the branch shown, oldest first",
        description=(
            "Regenerating or editing keeps earlier versions: messages form a tree (`parent`), and each lists "
            "its versions in `siblings`. By default this returns the branch the chat shows; `?branches=all` "
            "returns every message of every branch, oldest first."
        ),
        parameters=[BRANCHES],
        responses=MessageSerializer(many=True),
    )
    @action(detail=True, methods=["get"], serializer_class=MessageSerializer)
    def messages(self, request: Request, pk: str | None = None) -> Response:
        conversation = self.get_object()
        actions.do_expire_stale(conversation.pk)
        which = request.query_params.get("branches", "active")
        if which not in ("active", "all"):
            raise ValidationError({"branches": ['Expected "active" or "all".']})
        messages = (branches.all_messages if which == "all" else branches.active_path)(conversation.pk)
        paginator = self.paginator
        assert paginator is not None
        page = paginator.paginate_queryset(messages, request, view=self) or []
        return paginator.get_paginated_response(MessageSerializer(page, many=True).data)
