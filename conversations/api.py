"""The REST API of a user's conversations and their messages (/api/conversations/...).

Views parse and dispatch: reading goes through owner-only querysets (another user's conversation
is a 404, as if it did not exist), changing through conversations.actions, which also tells the
conversation's open sockets.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet, prefetch_related_objects
from django.utils.http import content_disposition_header
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from accounts.models import User
from conversations import actions, branches, export, listing, services, shares, temporary
from conversations.export import ConversationExportSerializer
from conversations.keyset_pages import ConversationPages, MarkdownRenderer
from conversations.models import Conversation
from conversations.serializers import (
    ConversationInput,
    ConversationSerializer,
    EndTemporaryInput,
    MessageSerializer,
)
from conversations.share_api import NewShareSerializer
from core.inputs import MAX_ID, BadInput, query_int
from core.rest import Private


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
PROJECT = OpenApiParameter(
    "project", str, description="Only those in this project (its id), or `none`: those in no project."
)
CURSOR = OpenApiParameter(
    "cursor",
    str,
    description="Keyset pages instead of numbered ones: empty for the first, then the answer's `next_cursor`.",
)
FORMAT = OpenApiParameter("format", str, enum=["json", "md"], description="JSON (default) or Markdown.")


@extend_schema_view(
    list=extend_schema(
        summary="Your conversations, pinned first, then most recently active (temporary ones are not listed)",
        parameters=[SEARCH, PROJECT, CURSOR],
    ),
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
    pagination_class = ConversationPages
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    lookup_value_converter = "int"

    def get_queryset(self) -> QuerySet[Conversation]:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular reading the view, with no user
            return Conversation.objects.none()
        user = _user(self.request)
        if self.action != "list":
            return Conversation.objects.filter(owner=user).select_related("model")
        params = self.request.query_params
        project: int | str | None = params.get("project") or None
        if project not in (None, listing.OUTSIDE_PROJECTS):
            try:
                project = query_int(params, "project", default=0, minimum=1, maximum=MAX_ID)
            except BadInput as exc:
                raise ValidationError({"project": [str(exc)]}) from None
        try:
            return listing.listed(user, params.get("q", ""), project).select_related("model")
        except BadInput as exc:
            raise ValidationError({"q": [str(exc)]}) from None
        except services.ChatError as exc:
            raise ValidationError({"project": [str(exc)]}) from None

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
        if "temporary" in fields:
            raise ValidationError({"temporary": ["A conversation is temporary or not from its start."]})
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
        summary="End your temporary chats but the one a page shows (what a chat page asks when it loads)",
        description=(
            "A temporary chat is deleted when you leave it: each chat page, once loaded, asks this with the "
            "conversation it shows as `keep`. One with a reply still being written is left to the server's "
            "sweep. Answers how many ended."
        ),
        request=EndTemporaryInput,
        responses={200: OpenApiResponse(description='{"ended": <count>}')},
    )
    @action(detail=False, methods=["post"], url_path="end-temporary", serializer_class=EndTemporaryInput)
    def end_temporary(self, request: Request) -> Response:
        data: BaseSerializer[Any] = EndTemporaryInput(data=request.data)
        data.is_valid(raise_exception=True)
        ended = temporary.end_for(_user(request), keep=data.validated_data.get("keep"))
        return Response({"ended": ended})

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
        which = request.query_params.get("branches", "active")
        if which not in ("active", "all"):
            raise ValidationError({"branches": ['Expected "active" or "all".']})
        messages = (branches.all_messages if which == "all" else branches.active_path)(conversation.pk)
        prefetch_related_objects(messages, "attachments")
        paginator = self.paginator
        assert paginator is not None
        page = paginator.paginate_queryset(messages, request, view=self) or []
        return paginator.get_paginated_response(MessageSerializer(page, many=True).data)

    @extend_schema(
        summary="The whole conversation as a download: its fields and every message (role, content, model, "
        "time, attachments' names)",
        parameters=[FORMAT],
        responses={200: OpenApiResponse(ConversationExportSerializer, description="JSON, or text/markdown")},
    )
    @action(
        detail=True,
        methods=["get"],
        serializer_class=ConversationExportSerializer,
        renderer_classes=[JSONRenderer, MarkdownRenderer],
    )
    def export(self, request: Request, pk: str | None = None) -> Response:
        conversation = self.get_object()
        response = Response(export.export_data(conversation))
        extension = request.accepted_renderer.format
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=export.filename(conversation, extension)
        )
        return response

    @extend_schema(
        summary="Share a read-only copy of it as it is now", request=None, responses={201: NewShareSerializer}
    )
    @action(detail=True, methods=["post"], serializer_class=NewShareSerializer)
    def share(self, request: Request, pk: str | None = None) -> Response:
        conversation = self.get_object()
        try:
            share, token = shares.create(_user(request), conversation.pk)
        except services.ChatError as exc:
            raise _refused(exc) from None
        data = NewShareSerializer(share, context={"request": request, "token": token}).data
        return Response(data, status=status.HTTP_201_CREATED)
