"""The one JSON shape of conversations and messages: the REST API, the chat socket and the page share it."""

from __future__ import annotations

import functools
from typing import Any

from django.urls import reverse
from rest_framework import serializers

from catalogue.models import LanguageModel
from conversations import branches, tuning
from conversations.models import Attachment, Conversation, Message


class AttachmentSerializer(serializers.ModelSerializer[Attachment]):
    url = serializers.SerializerMethodField(help_text="Its content, for its owner (as a download).")

    class Meta:
        model = Attachment
        fields = ["id", "name", "size", "kind", "content_type", "tokens", "url"]
        read_only_fields = fields

    def get_url(self, attachment: Attachment) -> str:
        return reverse("attachment", args=[attachment.pk])


class MessageSerializer(serializers.ModelSerializer[Message]):
    model: serializers.SlugRelatedField[LanguageModel] = serializers.SlugRelatedField(
        slug_field="public_id", read_only=True, allow_null=True
    )
    attachments = AttachmentSerializer(many=True, read_only=True)
    siblings = serializers.SerializerMethodField(
        help_text="The ids of this message's versions (itself included), oldest first: another is shown "
        "by choosing it in the chat, and every branch is listed by the messages endpoint with ?branches=all."
    )

    class Meta:
        model = Message
        fields = [
            "id",
            "role",
            "content",
            "reasoning",
            "parent",
            "siblings",
            "status",
            "error",
            "model",
            "prompt_tokens",
            "completion_tokens",
            "attachments",
            "tool_calls",
            "sources",
            "created_at",
        ]
        read_only_fields = fields

    def get_siblings(self, message: Message) -> list[int]:
        known = getattr(message, "sibling_ids", None)
        return list(known) if known is not None else branches.sibling_ids(message)


class ConversationSerializer(serializers.ModelSerializer[Conversation]):
    model: serializers.SlugRelatedField[LanguageModel] = serializers.SlugRelatedField(
        slug_field="public_id", read_only=True, allow_null=True
    )
    url = serializers.SerializerMethodField(help_text="This conversation in the REST API.")
    page_url = serializers.SerializerMethodField(help_text="This conversation's chat page.")
    messages_url = serializers.SerializerMethodField(help_text="Its messages in the REST API.")

    class Meta:
        model = Conversation
        fields = [
            "id",
            "title",
            "model",
            "system_prompt",
            "temperature",
            "max_output_tokens",
            "project",
            "pinned",
            "temporary",
            "tools",
            "created_at",
            "updated_at",
            "url",
            "page_url",
            "messages_url",
        ]
        read_only_fields = fields

    def get_url(self, conversation: Conversation) -> str:
        return reverse("api:conversation-detail", args=[conversation.pk])

    def get_page_url(self, conversation: Conversation) -> str:
        return reverse("conversation", args=[conversation.pk])

    def get_messages_url(self, conversation: Conversation) -> str:
        return reverse("api:conversation-messages", args=[conversation.pk])


class EndTemporaryInput(serializers.Serializer[Any]):
    """`keep`: the conversation the page shows, kept even if temporary; null or absent: a new chat's page."""

    keep = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**63 - 1)


class ConversationInput(serializers.Serializer[Any]):
    """What a client may set on a conversation; `model` is a public model id.

    DRF's CharField already refuses NUL characters and unpaired surrogates, which PostgreSQL cannot store.
    """

    title = serializers.CharField(required=False, allow_blank=True, max_length=200)
    model = serializers.CharField(required=False, allow_blank=True, max_length=200)
    system_prompt = serializers.CharField(required=False, allow_blank=True, max_length=20_000, trim_whitespace=False)
    temperature = serializers.FloatField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=tuning.MAX_TEMPERATURE,
        help_text="null: the model's default.",
    )
    max_output_tokens = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=tuning.MAX_OUTPUT_TOKENS,
        help_text="null: the model's limit. Capped by the model's own output limit when a reply is asked for.",
    )
    project = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**31 - 1,
        help_text="One of your projects' id; null takes it out.",
    )
    pinned = serializers.BooleanField(required=False)
    temporary = serializers.BooleanField(
        required=False, help_text="Only when it starts: kept out of the list and deleted when its session ends."
    )
    tools = serializers.JSONField(
        required=False,
        help_text='The tools its replies may use: {"web_search": true, "fetch": true, "mcp_servers": ["name"]} '
        "(MCP servers you may use, by name). A new conversation in a project starts with the project's.",
    )


# The socket's frames use one serializer of each kind for every call. DRF builds a serializer's
# fields anew for each instance, which cost 15 times the representation itself (304 against 19 µs
# per message); to_representation keeps nothing between calls, so one instance serves all threads.
@functools.cache
def _shared(kind: type[serializers.ModelSerializer[Any]]) -> serializers.ModelSerializer[Any]:
    serializer = kind()
    serializer.fields  # noqa: B018 - built here, once, rather than by two threads at once later
    return serializer


def message_data(message: Message) -> dict[str, Any]:
    return dict(_shared(MessageSerializer).to_representation(message))


def conversation_data(conversation: Conversation) -> dict[str, Any]:
    return dict(_shared(ConversationSerializer).to_representation(conversation))
