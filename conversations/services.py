"""The browser chat's conversations and messages, and the request for a reply it gives the gateway.

Synchronous ORM code (on core.db's threads or in synchronous views). conversations.actions
stores through these functions, then publishes what other sockets must hear of. A reply is written
by conversations.generation, a background task that outlives sockets, from the request
`generation_input` builds once (gateway.chat_completions.inprocess.ChatTurn).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, prefetch_related_objects
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import User
from catalogue.models import LanguageModel
from conversations import branches, files, knowledge, tool_calls, tool_choice, tuning
from conversations.errors import ChatError, ConversationGone
from conversations.models import Attachment, Conversation, Message
from core.inputs import BadInput, check_text
from gateway.auth import find_usable_model, member_groups
from gateway.chat_completions.inprocess import ChatTurn
from usage.tokens import REQUEST_OVERHEAD_TOKENS, estimate_message_tokens

# The generator writes its partial text at most this often, and touches the heartbeat at least
# every HEARTBEAT_SECONDS; a "streaming" message whose heartbeat is older than STALE_AFTER has
# no live generator anywhere (its worker died or restarted) and is shown as interrupted.
PERSIST_SECONDS = 0.5
HEARTBEAT_SECONDS = 2.0
STALE_AFTER = timedelta(seconds=10)
STOPPED_BY_SERVER = "The server stopped while writing this reply."
MAX_MESSAGE_CHARS = 100_000
TITLE_CHARS = 60


def chat_models(user: User | None = None) -> QuerySet[LanguageModel]:
    """The chat models `user` may use (those open to everyone when no user is given)."""
    groups = member_groups(user.pk) if user is not None else frozenset()
    return LanguageModel.objects.usable().chat().open_to(groups).order_by("public_id")


def default_model(user: User | None = None) -> LanguageModel | None:
    return chat_models(user).first()


def conversations_for(user: User, query: str = "") -> QuerySet[Conversation]:
    qs = Conversation.objects.filter(owner=user)
    query = query.strip()
    if query:
        # A NUL in a LIKE pattern is a PostgreSQL error; such text can be in no conversation anyway.
        check_text(query, "The search")
        matching = Message.objects.filter(conversation=OuterRef("pk"), content__icontains=query)
        qs = qs.filter(Q(title__icontains=query) | Exists(matching))
    return qs.order_by("-updated_at", "-id")


def get_conversation(user: User, pk: int | str) -> Conversation:
    """The user's conversation or 404: another user's conversation does not exist for them."""
    return get_object_or_404(Conversation.objects.select_related("model"), pk=pk, owner=user)


def find_conversation(user: User, pk: int | str) -> Conversation | None:
    return Conversation.objects.select_related("model").filter(pk=pk, owner=user).first()


def _model_by_public_id(public_id: str | None, user: User | None = None) -> LanguageModel | None:
    if not public_id:
        return None
    model = chat_models(user).filter(public_id=public_id).first()
    if model is None:
        raise ChatError(f"The model {public_id!r} is not available.", param="model")
    return model


model_by_public_id = _model_by_public_id


def create_conversation(user: User, model_id: str | None = None, system_prompt: str = "") -> Conversation:
    model = _model_by_public_id(model_id, user) or default_model(user)
    return Conversation.objects.create(owner=user, model=model, system_prompt=system_prompt.strip())


def update_conversation(
    conversation: Conversation,
    *,
    title: str | None = None,
    model_id: str | None = None,
    system_prompt: str | None = None,
    temperature: float | tuning.Keep | None = tuning.KEEP,
    max_output_tokens: int | tuning.Keep | None = tuning.KEEP,
) -> Conversation:
    try:
        fields = tuning.apply(conversation, temperature=temperature, max_output_tokens=max_output_tokens)
    except tuning.SettingError as exc:
        raise ChatError(str(exc), param=exc.param) from None
    if title is not None:
        conversation.title = title.strip()[:200]
        fields.append("title")
    if model_id is not None:
        conversation.model = _model_by_public_id(model_id, conversation.owner)
        fields.append("model")
    if system_prompt is not None:
        conversation.system_prompt = system_prompt.strip()
        fields.append("system_prompt")
    if fields:
        conversation.save(update_fields=fields)
    return conversation


def delete_conversation(conversation: Conversation) -> None:
    conversation.delete()


def make_title(text: str) -> str:
    """A short title from the first message: its first line, without Markdown markup, cut at a word."""
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"[`*_#>\[\]]+", "", line).strip()
    line = re.sub(r"\s+", " ", line)
    if len(line) <= TITLE_CHARS:
        return line or "New chat"
    cut = line[:TITLE_CHARS].rsplit(" ", 1)[0]
    return (cut if len(cut) > TITLE_CHARS // 2 else line[:TITLE_CHARS]).rstrip(",.;:") + "…"


def _stale(alive: Collection[int]) -> QuerySet[Message]:
    stale = Message.objects.filter(status=Message.Status.STREAMING, updated_at__lt=timezone.now() - STALE_AFTER)
    return stale.exclude(pk__in=alive) if alive else stale


def has_stale(alive: Collection[int] = ()) -> bool:
    return _stale(alive).exists()


def expire_stale(alive: Collection[int] = ()) -> list[Message]:
    """Marks replies whose generator stopped beating as interrupted, but those in `alive` (their
    generator is known to run); returns them. Their text so far is kept."""
    candidates = _stale(alive).select_related("model")
    expired = []
    for message in candidates:
        # Only if still streaming: its generator may have finished it meanwhile.
        updated = Message.objects.filter(pk=message.pk, status=Message.Status.STREAMING).update(
            status=Message.Status.INTERRUPTED, error=STOPPED_BY_SERVER
        )
        if updated:
            message.status = Message.Status.INTERRUPTED
            message.error = STOPPED_BY_SERVER
            expired.append(message)
    return expired


def messages_of(conversation_id: int) -> list[Message]:
    """The branch on screen (see conversations.branches), with each message's files."""
    messages = branches.active_path(conversation_id)
    prefetch_related_objects(messages, "attachments")
    return messages


def streaming_ids(conversation_id: int) -> list[int]:
    return list(
        Message.objects.filter(conversation_id=conversation_id, status=Message.Status.STREAMING).values_list(
            "pk", flat=True
        )
    )


def own_streaming_ids(user: User, conversation_id: int) -> list[int]:
    return list(
        Message.objects.filter(
            conversation_id=conversation_id, conversation__owner=user, status=Message.Status.STREAMING
        ).values_list("pk", flat=True)
    )


def lock_idle(user: User, conversation_id: int) -> Conversation:
    """The user's conversation, locked, refused while a reply is being written or the account is off."""
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("model", "owner")
        .filter(pk=conversation_id, owner=user)
        .first()
    )
    if conversation is None:
        raise ConversationGone()
    # A socket opened before an admin deactivated the account must not go on spending on its behalf.
    if not conversation.owner.is_active:
        raise ChatError("Your account is deactivated.")
    if Message.objects.filter(conversation=conversation, status=Message.Status.STREAMING).exists():
        raise ChatError("A reply is still being written. Stop it first.")
    return conversation


def _lock(user: User, conversation_id: int) -> Conversation:
    conversation = lock_idle(user, conversation_id)
    _check_generations_in_flight(user)
    # From the rights cache: every send asked the database for the model's deployments.
    if conversation.model is None or find_usable_model(conversation.model.public_id, user) is None:
        model = default_model(user)
        if model is None:
            raise ChatError("No model is configured. An admin can add one at /admin/.", param="model")
        conversation.model = model
        conversation.save(update_fields=["model"])
    return conversation


def _check_generations_in_flight(user: User) -> None:
    """At most CHAT_MAX_GENERATIONS replies written at once per user, across conversations and workers."""
    # Serialises one user's starts (other users never wait), so two at once cannot both see room.
    User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()
    limit = settings.CHAT_MAX_GENERATIONS
    live = Message.objects.filter(
        conversation__owner=user, status=Message.Status.STREAMING, updated_at__gte=timezone.now() - STALE_AFTER
    ).count()
    if live >= limit:
        raise ChatError(
            f"You already have {live} replies being written (at most {limit} at once). "
            "Wait for one to finish or stop it."
        )


def _placeholder(conversation: Conversation, parent_id: int | None, siblings: list[int] | None = None) -> Message:
    now = timezone.now()
    conversation.updated_at = now
    conversation.save(update_fields=["updated_at", "title"])
    reply = branches.add(
        conversation,
        parent_id,
        siblings=siblings,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        model=conversation.model,
        created_at=now,
        updated_at=now,
    )
    return _without_files(reply)


def _without_files(message: Message) -> Message:
    """A message known to have no files: serialising it asks the database for none."""
    none = Attachment.objects.none()
    # As prefetch_related leaves it: evaluated, so iterating it compiles no query either.
    none._result_cache = []
    message._prefetched_objects_cache = {"attachments": none}  # type: ignore[attr-defined]
    return message


def _clean(content: str, *, may_be_empty: bool = False) -> str:
    if may_be_empty and isinstance(content, str) and not content.strip():
        return ""
    if not isinstance(content, str) or not content.strip():
        raise ChatError("The message is empty.")
    if len(content) > MAX_MESSAGE_CHARS:
        raise ChatError(f"The message is too long (at most {MAX_MESSAGE_CHARS} characters).")
    try:
        return check_text(content, "The message")
    except BadInput as exc:
        raise ChatError(str(exc)) from None


def add_user_message(
    user: User, conversation_id: int, content: str, attachments: Sequence[int] = ()
) -> tuple[Message, Message]:
    """Stores the user's message (with their uploads `attachments`) and an empty streaming reply,
    before anything goes upstream."""
    content = _clean(content, may_be_empty=bool(attachments))
    # No savepoint: a refusal raises through the caller's transaction too.
    with transaction.atomic(savepoint=False):
        conversation = _lock(user, conversation_id)
        user_message = branches.append(conversation, role=Message.Role.USER, content=content)
        if attachments:
            try:
                too_long = files.claim(user, user_message, attachments, conversation.model, conversation.system_prompt)
            except files.FileRefused as exc:
                raise ChatError(str(exc), param="attachments") from None
            if too_long:
                knowledge.retrieve_instead(user, conversation, too_long)
        else:
            _without_files(user_message)
        if not conversation.title:
            conversation.title = make_title(content or files.first_name(user_message))
        reply = _placeholder(conversation, user_message.pk, siblings=[])  # a new question has no answers yet
    return user_message, reply


def regenerate(user: User, conversation_id: int) -> tuple[list[int], Message]:
    """Answers the last question again; the earlier reply (also an errored one) stays as another version."""
    with transaction.atomic(savepoint=False):
        conversation = _lock(user, conversation_id)
        path = branches.active_path(conversation.pk)
        if not path:
            raise ChatError("There is nothing to regenerate.")
        last = path[-1]
        if last.role == Message.Role.ASSISTANT:
            removed, parent_id = [last.pk], last.parent_id
        else:
            removed, parent_id = [], last.pk
        reply = _placeholder(conversation, parent_id)
    return removed, reply


def edit_and_resend(
    user: User, conversation_id: int, message_id: int, content: str
) -> tuple[Message, list[int], Message]:
    """Asks an earlier question again, changed: a new version beside it, so the old branch is kept.

    Returns the new question, the ids that left the screen (the old question and what followed it)
    and the reply to generate.
    """
    content = _clean(content)
    with transaction.atomic(savepoint=False):
        conversation = _lock(user, conversation_id)
        path = branches.active_path(conversation.pk)
        at = next((i for i, m in enumerate(path) if m.pk == message_id and m.role == Message.Role.USER), None)
        if at is None:
            raise ChatError("That message cannot be edited.")
        removed = [m.pk for m in path[at:]]
        question = branches.add(conversation, path[at].parent_id, role=Message.Role.USER, content=content)
        files.copy(path[at], question)
        reply = _placeholder(conversation, question.pk, siblings=[])  # a new question has no answers yet
    return question, removed, reply


def trim_history(
    system_prompt: str, history: list[dict[str, Any]], context_length: int, reserve: int
) -> list[dict[str, Any]]:
    """Drops the oldest turns until the prompt fits the context; keeps the system prompt and the last turn."""
    return _trimmed(system_prompt, history, context_length, reserve)[0]


def _trimmed(
    system_prompt: str, history: list[dict[str, Any]], context_length: int, reserve: int
) -> tuple[list[dict[str, Any]], int]:
    """trim_history's messages, and their estimated prompt tokens (usage.tokens.estimate_prompt_tokens's)."""
    budget = max(context_length - reserve, 0)
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    used = sum(estimate_message_tokens(m) for m in system)
    kept: list[dict[str, Any]] = []
    for item in reversed(history):
        cost = estimate_message_tokens(item)
        if kept and used + cost > budget:
            break
        kept.append(item)
        used += cost
    kept.reverse()
    # An assistant turn first would lose the question it answered (a tool result, the call it answers).
    while len(kept) > 1 and kept[0]["role"] in (Message.Role.ASSISTANT, "tool"):
        used -= estimate_message_tokens(kept.pop(0))
    return system + kept, REQUEST_OVERHEAD_TOKENS + used


def generation_input(message_id: int, *, files_pending: bool = False) -> ChatTurn | None:
    """The gateway's request for a streaming reply (gateway.chat_completions.inprocess); None if it is
    gone or finished. knowledge.StillIngesting while a file of the conversation waits for the ingestion
    worker, unless `files_pending` says to go on with what is ready."""
    reply = (
        Message.objects.select_related("conversation__owner", "model", "conversation")
        .filter(pk=message_id, status=Message.Status.STREAMING)
        .first()
    )
    if reply is None:
        return None
    conversation = reply.conversation
    if not files_pending and knowledge.ingesting(conversation):
        raise knowledge.StillIngesting
    model = reply.model or conversation.model
    # The branch the reply answers, and only the answers' text: reasoning never goes back upstream.
    earlier = [m for m in branches.ancestors(reply)]
    prefetch_related_objects(earlier, "attachments")
    vision = bool(model and model.vision)
    history: list[dict[str, Any]] = []
    for m in earlier:
        if m.role == Message.Role.ASSISTANT and m.tool_calls:
            history.extend(tool_calls.upstream_messages(m.content, m.tool_calls))
        elif m.content or m.attachments.all():
            content = files.upstream_content(m.content, list(m.attachments.all()), vision=vision)
            history.append({"role": m.role, "content": content})
    options = tuning.upstream_options(conversation, model)
    context_length = model.context_length if model else 4096
    reserve = min(options.get("max_tokens") or (model.max_output_tokens if model else 1024), context_length // 2)
    asked = bool(history) and earlier[-1].role == Message.Role.USER
    # A model that takes tools searches the knowledge bases itself; the others get the passages pasted.
    stores = knowledge.searched_by(conversation) if asked else []
    if asked and not (model is not None and model.tools):
        sources = knowledge.find_sources(conversation, stores, earlier[-1].content, context_length - reserve)
        history[-1]["content"] = knowledge.with_sources(history[-1]["content"], sources)
        knowledge.keep_sources(reply, sources)
    messages, prompt_tokens = _trimmed(conversation.system_prompt, history, context_length, reserve)
    public_id = model.public_id if model else ""
    # From the rights cache, with the routes the gateway tries: the one check that the model may serve
    # (and that its owner may use it).
    usable = find_usable_model(public_id, conversation.owner) if public_id else None
    # A model that takes no tools answers without them rather than failing; so does a conversation whose MCP
    # server was removed, or closed to its owner, since it was chosen.
    chosen = tool_choice.still_usable(conversation.owner, conversation.tools)
    tools = tool_choice.choice_of(chosen) if model is not None and model.tools else None
    if stores and model is not None and model.tools:
        tools = knowledge.with_file_search(tools, stores, context_length - reserve)
    return ChatTurn(conversation.owner, public_id, usable, messages, prompt_tokens, options, tools=tools)


# Message's table; every value is a parameter (the lists become arrays).
_SAVE_PROGRESS = """
    UPDATE conversations_message AS m SET content = v.content, reasoning = v.reasoning, updated_at = %s
    FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS v(id, content, reasoning)
    WHERE m.id = v.id AND m.status = %s
"""


def save_progress(replies: Sequence[tuple[int, str, str]]) -> None:
    """Partial text and heartbeat of streaming replies, `[(id, content, reasoning), ...]`, in one statement."""
    if not replies:
        return
    ids, contents, thoughts = (list(column) for column in zip(*replies, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            _SAVE_PROGRESS,
            [timezone.now(), ids, contents, thoughts, Message.Status.STREAMING],
        )


def save_tool_calls(message_id: int, calls: list[dict[str, Any]]) -> None:
    """A streaming reply's tool calls as they start and end: a reload, or a closed tab opened again, shows them."""
    Message.objects.filter(pk=message_id, status=Message.Status.STREAMING).update(
        tool_calls=calls, updated_at=timezone.now()
    )


def finish(
    message_id: int,
    content: str,
    status: str,
    error: str = "",
    usage: dict[str, Any] | None = None,
    reasoning: str = "",
    calls: list[dict[str, Any]] | None = None,
) -> Message | None:
    usage = usage or {}
    fields: dict[str, Any] = {"tool_calls": calls} if calls is not None else {}
    Message.objects.filter(pk=message_id).update(
        content=content,
        reasoning=reasoning,
        status=status,
        error=error,
        updated_at=timezone.now(),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        **fields,
    )
    message = Message.objects.select_related("model", "conversation").filter(pk=message_id).first()
    if message is not None:
        _without_files(message)  # replies carry no uploads: those belong to the questions
        Conversation.objects.filter(pk=message.conversation_id).update(updated_at=timezone.now())
        # Read here: the caller serialises it on an event loop, where no query may run.
        message.sibling_ids = branches.sibling_ids(message)  # type: ignore[attr-defined]
    return message
