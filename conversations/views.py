from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatsite.inputs import BadInput, parse_json, unstorable
from conversations import generation, services


@never_cache
@login_required
def chat(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    user = request.user
    assert user.is_authenticated
    query = request.GET.get("q", "")
    conversation = services.get_conversation(user, pk) if pk is not None else None
    messages = []
    if conversation is not None:
        services.expire_stale(conversation.pk)
        messages = [services.message_dict(m) for m in services.messages_of(conversation.pk)]
    try:
        conversations = list(services.conversations_for(user, query)[:200])
    except BadInput:  # a search no conversation can match (a NUL character)
        conversations = []
    models = list(services.chat_models())
    context: dict[str, Any] = {
        "conversations": conversations,
        "query": query,
        "conversation": conversation,
        "models": models,
        "current_model": (
            conversation.model if conversation and conversation.model else (models[0] if models else None)
        ),
        "initial": {
            "conversation": services.conversation_dict(conversation) if conversation else None,
            "messages": messages,
            "models": [{"id": m.public_id, "context_length": m.context_length} for m in models],
        },
    }
    return render(request, "conversations/chat.html", context)


def _storable(value: str) -> None:
    reason = unstorable(value)
    if reason is not None:
        raise serializers.ValidationError(f"This text cannot be stored: {reason}.")


class ConversationInput(serializers.Serializer):
    title = serializers.CharField(required=False, allow_blank=True, max_length=200, validators=[_storable])
    model = serializers.CharField(required=False, allow_blank=True, max_length=200, validators=[_storable])
    system_prompt = serializers.CharField(required=False, allow_blank=True, max_length=20_000, validators=[_storable])


class SafeJSONParser(JSONParser):
    """JSON bodies within MAX_REQUEST_BYTES and chatsite.inputs' depth; anything else is a 400, never a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read(settings.MAX_REQUEST_BYTES + 1) if stream is not None else b""
        try:
            return parse_json(raw, max_bytes=settings.MAX_REQUEST_BYTES)
        except BadInput as exc:
            raise ParseError(str(exc)) from None


class _ChatAPI(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [SafeJSONParser]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ParseError):
            return _invalid(str(exc.detail))
        if isinstance(exc, BadInput):
            return _invalid(str(exc))
        return super().handle_exception(exc)


def _invalid(message: str) -> Response:
    return Response({"error": {"message": message}}, status=status.HTTP_400_BAD_REQUEST)


class ConversationList(_ChatAPI):
    def get(self, request: Request) -> Response:
        found = services.conversations_for(request.user, request.query_params.get("q", ""))[:200]  # type: ignore[arg-type]
        return Response({"conversations": [services.conversation_dict(c) for c in found]})

    def post(self, request: Request) -> Response:
        data = ConversationInput(data=request.data)
        if not data.is_valid():
            return Response({"error": {"message": "Invalid fields.", "fields": data.errors}}, status=400)
        try:
            conversation = services.create_conversation(
                request.user,  # type: ignore[arg-type]
                data.validated_data.get("model") or None,
                data.validated_data.get("system_prompt", ""),
            )
            if data.validated_data.get("title"):
                services.update_conversation(conversation, title=data.validated_data["title"])
        except services.ChatError as exc:
            return _invalid(str(exc))
        return Response(services.conversation_dict(conversation), status=status.HTTP_201_CREATED)


class ConversationDetail(_ChatAPI):
    def get(self, request: Request, pk: int) -> Response:
        conversation = services.get_conversation(request.user, pk)  # type: ignore[arg-type]
        payload = services.conversation_dict(conversation)
        payload["messages"] = [services.message_dict(m) for m in services.messages_of(conversation.pk)]
        return Response(payload)

    def patch(self, request: Request, pk: int) -> Response:
        conversation = services.get_conversation(request.user, pk)  # type: ignore[arg-type]
        data = ConversationInput(data=request.data, partial=True)
        if not data.is_valid():
            return Response({"error": {"message": "Invalid fields.", "fields": data.errors}}, status=400)
        try:
            services.update_conversation(
                conversation,
                title=data.validated_data.get("title"),
                model_id=data.validated_data.get("model"),
                system_prompt=data.validated_data.get("system_prompt"),
            )
        except services.ChatError as exc:
            return _invalid(str(exc))
        payload = services.conversation_dict(conversation)
        async_to_sync(generation.layer().group_send)(
            generation.conversation_group(conversation.pk), {"type": "chat.conversation", "conversation": payload}
        )
        return Response(payload)

    def delete(self, request: Request, pk: int) -> Response:
        conversation = services.get_conversation(request.user, pk)  # type: ignore[arg-type]
        streaming = services.streaming_ids(conversation.pk)
        services.delete_conversation(conversation)
        for message_id in streaming:
            async_to_sync(generation.request_stop)(message_id)
        async_to_sync(generation.layer().group_send)(generation.conversation_group(pk), {"type": "chat.deleted"})
        return Response(status=status.HTTP_204_NO_CONTENT)
