from __future__ import annotations

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import models
from django.utils import timezone


class Conversation(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, blank=True)
    model = models.ForeignKey("catalogue.LanguageModel", null=True, blank=True, on_delete=models.SET_NULL)
    system_prompt = models.TextField(blank=True)
    # Per-conversation sampling settings; null means the model's own default.
    temperature = models.FloatField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    project = models.ForeignKey(
        "Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    pinned = models.BooleanField(default=False)
    # Kept out of the list and deleted once its owner leaves it (conversations/temporary.py).
    temporary = models.BooleanField(default=False)
    # The tools its replies may use (conversations.tool_choice): {"web_search", "fetch", "mcp_servers": [names]}.
    tools = models.JSONField(default=dict, blank=True)
    # Knowledge bases every reply searches (with its project's), and the conversation's own one: where a
    # file too long for the model's context goes to be searched (conversations/knowledge.py).
    knowledge_bases = models.ManyToManyField("knowledge.VectorStore", blank=True, related_name="+")
    own_knowledge = models.OneToOneField(
        "knowledge.VectorStore", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["owner", "-updated_at"]),
            # The list's keyset: pinned first, then most recently active (conversations/listing.py).
            models.Index(fields=["owner", "temporary", "-pinned", "-updated_at", "-id"], name="conversation_list"),
            models.Index(fields=["temporary", "updated_at"], name="conversation_temporary"),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        COMPLETE = "complete"
        STREAMING = "streaming"
        INTERRUPTED = "interrupted"
        ERROR = "error"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    # What a reasoning model thought before answering: shown apart, never sent back upstream.
    reasoning = models.TextField(blank=True)
    # Messages form a tree: regenerating or editing adds a sibling instead of overwriting. Among
    # siblings (children of one parent, or the roots) exactly one is `active`; following the active
    # child from the active root gives the branch on screen and the history sent upstream.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    active = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    error = models.TextField(blank=True)
    model = models.ForeignKey("catalogue.LanguageModel", null=True, blank=True, on_delete=models.SET_NULL)
    # The tools the reply called, in order, as the chat shows them (conversations.tool_calls): stored with the
    # reply so a reload shows them and the history sent upstream carries the calls and their results.
    tool_calls = models.JSONField(default=list, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    sources = models.JSONField(
        default=list,
        blank=True,
        help_text="The passages of knowledge bases a reply was given, as it may cite them: "
        '[{"n", "filename", "page", "section", "text"}].',
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The generator's heartbeat while streaming: a message left "streaming" whose heartbeat stopped
    # belongs to a worker that died, whichever process looks at it (no process memory involved).
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["conversation", "created_at"]),
            # Only replies being written: what the sweep (conversations.sweeper) reads every few seconds.
            models.Index(fields=["updated_at"], name="message_streaming", condition=models.Q(status="streaming")),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"


class Project(models.Model):
    """A folder of conversations with the model and system prompt its new chats start with."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=100)
    model = models.ForeignKey("catalogue.LanguageModel", null=True, blank=True, on_delete=models.SET_NULL)
    system_prompt = models.TextField(blank=True)
    # The tools its new conversations start with (the shape of Conversation.tools).
    tools = models.JSONField(default=dict, blank=True)
    # Knowledge bases all its chats search.
    knowledge_bases = models.ManyToManyField("knowledge.VectorStore", blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["owner", "name"])]

    def __str__(self) -> str:
        return self.name


class Share(models.Model):
    """A read-only copy of a conversation as it was when shared, reachable by whoever holds its link.

    Only the SHA-256 of the link's token is stored: a leaked database does not open the links.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shares")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="shares")
    token_hash = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=200, blank=True)
    snapshot = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return self.title or f"Share {self.pk}"


def _attachment_storage() -> Storage:
    """The storage settings.STORAGES names "attachments" (read when the models load, after the settings)."""
    return storages["attachments"]


class Attachment(models.Model):
    """A file a user uploaded for the chat: theirs alone, tied to the message that sent it once sent."""

    class Kind(models.TextChoices):
        IMAGE = "image"
        DOCUMENT = "document"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(storage=_attachment_storage, upload_to="%Y/%m/", max_length=300)
    name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # What the content is, sniffed from its bytes (never the name or the browser's word).
    content_type = models.CharField(max_length=100)
    text = models.TextField(blank=True)  # a document's text, as the model reads it
    tokens = models.PositiveIntegerField(default=0)
    # A document too long for the model's context: searched in the conversation's own knowledge base
    # instead of pasted whole.
    retrieved = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["owner", "message"])]

    def __str__(self) -> str:
        return self.name
