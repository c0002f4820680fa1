"""A conversation written out: the JSON the API and the downloads serve, its Markdown, and the
subset a share link shows. One builder, so the three never drift apart.

A message's attachments are read in `attachment_names` alone: the one place to extend when messages
carry more than text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from conversations import services
from conversations.models import Conversation, Message
from conversations.serializers import ConversationSerializer, MessageSerializer

ROLE_NAMES = {"user": "You", "assistant": "Assistant", "system": "System"}


def attachment_names(message: Message) -> list[str]:
    """The names of the files a message carries (none where messages carry no files)."""
    related = getattr(message, "attachments", None)
    if related is None:
        return []
    return [str(getattr(item, "name", item)) for item in related.all()]


class ExportMessageSerializer(MessageSerializer):
    attachments = serializers.SerializerMethodField(  # type: ignore[assignment]
        help_text="The names of the files sent with the message."
    )

    class Meta(MessageSerializer.Meta):
        # Names only: an export or a share carries no link to the owner's files.
        fields = [*(f for f in MessageSerializer.Meta.fields if f != "attachments"), "attachments"]
        read_only_fields = fields

    def get_attachments(self, message: Message) -> list[str]:
        return attachment_names(message)


class ConversationExportSerializer(ConversationSerializer):
    messages = serializers.SerializerMethodField()
    exported_at = serializers.SerializerMethodField()

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "exported_at", "messages"]
        read_only_fields = fields

    def get_messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        messages = services.messages_of(conversation.pk)
        return list(ExportMessageSerializer(messages, many=True).data)

    def get_exported_at(self, conversation: Conversation) -> str:
        return str(serializers.DateTimeField().to_representation(timezone.now()))


def export_data(conversation: Conversation) -> dict[str, Any]:
    return dict(ConversationExportSerializer(conversation).data)


# What a share link shows: the words and who said them, never the system prompt, the project, token
# counts, the tools' results (they may come from the owner's own MCP servers) or anything that would
# identify the owner. Of knowledge bases, only the passages a reply cited.
SHARED_MESSAGE_FIELDS = ("role", "content", "model", "created_at", "attachments", "sources")


def snapshot(conversation: Conversation) -> dict[str, Any]:
    data = export_data(conversation)
    return {
        "title": data["title"] or "New chat",
        "created_at": data["created_at"],
        "messages": [
            {name: message[name] for name in SHARED_MESSAGE_FIELDS}
            for message in data["messages"]
            if message["content"] or message["attachments"]
        ],
    }


def _when(value: str | datetime | None) -> str:
    if not value:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def to_markdown(data: dict[str, Any]) -> str:
    """Export (or snapshot) data as a Markdown document, a heading per message."""
    lines = [f"# {_one_line(data.get('title') or 'New chat')}", ""]
    facts = [f"Exported {_when(data['exported_at'])}" if data.get("exported_at") else ""]
    if data.get("model"):
        facts.append(f"model {data['model']}")
    facts = [f for f in facts if f]
    if facts:
        lines += [f"*{' · '.join(facts)}*", ""]
    if data.get("system_prompt"):
        lines += ["## System prompt", "", data["system_prompt"], ""]
    for message in data.get("messages", []):
        who = ROLE_NAMES.get(message["role"], message["role"])
        if message.get("model") and message["role"] == "assistant":
            who += f" ({message['model']})"
        lines += [f"## {who} · {_when(message.get('created_at'))}", ""]
        if message.get("content"):
            lines += [message["content"], ""]
        if message.get("attachments"):
            lines += ["Attachments: " + ", ".join(_one_line(n) for n in message["attachments"]), ""]
        if message.get("tool_calls"):
            used = (f"{_one_line(call.get('name', ''))} ({call.get('state', '')})" for call in message["tool_calls"])
            lines += ["Tools: " + ", ".join(used), ""]
        if message.get("sources"):
            lines += ["Sources: " + "; ".join(_cited(source) for source in message["sources"]), ""]
        if message.get("status") in ("error", "interrupted") and message.get("error"):
            lines += [f"*{_one_line(message['error'])}*", ""]
    return "\n".join(lines).rstrip() + "\n"


def _cited(source: dict[str, Any]) -> str:
    page = f", page {source['page']}" if source.get("page") else ""
    return f"[{source['n']}] {_one_line(source['filename'])}{page}"


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def filename(conversation: Conversation, extension: str) -> str:
    stem = re.sub(r"[^\w\- ]+", "", conversation.title or "", flags=re.UNICODE).strip()
    stem = re.sub(r"\s+", "-", stem)[:60] or f"conversation-{conversation.pk}"
    return f"{stem}.{extension}"
