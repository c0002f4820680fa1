"""What people do in the chat. Each action stores its change, then publishes it once committed.

    reply = do_send(user, conversation_id, "Hello")              # synchronous code: tests, a shell
    reply = await events.run(do_send, user, conversation_id, "Hello")   # the socket

Open sockets (on any worker) hear of every change to a conversation only through these
publications (a reply's text as it is written comes from its generation), so a change made
through the REST API, a socket or another tab reaches every open view of it alike, and nothing is
announced for a change that rolled back. A refused action raises services.ChatError
(ConversationGone for a conversation that is not the user's) and changes nothing.

Starting the generation of a stored reply is the caller's: it runs on the caller's event loop
(conversations.generation.start).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from django.db import transaction

from accounts.models import User
from conversations import branches, projects, services, tool_choice, tuning
from conversations.events import control_group, conversation_group, publish
from conversations.models import Conversation, Message
from conversations.serializers import conversation_data, message_data


def _publish_message(message: Message) -> None:
    publish(conversation_group(message.conversation_id), {"type": "chat.message", "message": message_data(message)})


def _publish_conversation(conversation: Conversation) -> None:
    payload = conversation_data(conversation)
    publish(conversation_group(conversation.pk), {"type": "chat.conversation", "conversation": payload})


def _publish_removed(conversation_id: int, ids: list[int]) -> None:
    if ids:
        publish(conversation_group(conversation_id), {"type": "chat.removed", "ids": ids})


def _owned(user: User, conversation_id: int) -> Conversation:
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("model")
        .filter(pk=conversation_id, owner=user)
        .first()
    )
    if conversation is None:
        raise services.ConversationGone()
    return conversation


def do_create(
    user: User,
    *,
    model: str | None = None,
    system_prompt: str = "",
    title: str = "",
    temperature: float | tuning.Keep | None = tuning.KEEP,
    max_output_tokens: int | tuning.Keep | None = tuning.KEEP,
    project: int | None = None,
    pinned: bool = False,
    temporary: bool = False,
    tools: dict[str, Any] | None = None,
) -> Conversation:
    """A new, empty conversation (the chosen model and tools, else its project's, else the defaults)."""
    with transaction.atomic():
        in_project, model, system_prompt = projects.starting_in(user, project, model, system_prompt)
        chosen = tool_choice.clean(user, tools) if tools is not None else None
        conversation = services.create_conversation(user, model or None, system_prompt)
        services.update_conversation(
            conversation,
            title=title if title.strip() else None,
            temperature=temperature,
            max_output_tokens=max_output_tokens,
        )
        if chosen is None and in_project is not None:
            chosen = tool_choice.still_usable(user, in_project.tools)
        if in_project is not None or pinned or temporary or chosen:
            conversation.project, conversation.pinned, conversation.temporary = in_project, pinned, temporary
            conversation.tools = chosen or {}
            conversation.save(update_fields=["project", "pinned", "temporary", "tools"])
    return conversation


def do_send(user: User, conversation_id: int, content: str, attachments: Sequence[int] = ()) -> Message:
    """Stores the user's message (and attaches their uploads) and an empty streaming reply; returns the reply."""
    with transaction.atomic():
        user_message, reply = services.add_user_message(user, conversation_id, content, attachments)
        _publish_message(user_message)
        _publish_conversation(reply.conversation)
        _publish_message(reply)
    return reply


def do_edit(user: User, conversation_id: int, message_id: int, content: str) -> Message:
    """Asks an earlier question again, changed, as a new branch (the old one is kept); returns the reply to generate."""
    with transaction.atomic():
        edited, removed, reply = services.edit_and_resend(user, conversation_id, message_id, content)
        _publish_removed(conversation_id, removed)
        _publish_message(edited)
        _publish_message(reply)
    return reply


def do_regenerate(user: User, conversation_id: int) -> Message:
    """Answers the last question again beside the earlier reply (kept as another version); returns the new one."""
    with transaction.atomic():
        removed, reply = services.regenerate(user, conversation_id)
        _publish_removed(conversation_id, removed)
        _publish_message(reply)
    return reply


def do_switch(user: User, conversation_id: int, message_id: int) -> list[Message]:
    """Shows another version of a message (and the branch below it); returns the messages now shown from it on."""
    with transaction.atomic():
        conversation = services.lock_idle(user, conversation_id)
        target = conversation.messages.filter(pk=message_id).first()
        if target is None:
            raise services.ChatError("That version is not in this conversation.", param="id")
        removed, shown = branches.choose(conversation, target)
        _publish_removed(conversation_id, removed)
        for message in shown:
            _publish_message(message)
    return shown


def do_stop(user: User, conversation_id: int) -> list[int]:
    """Asks the generations of the conversation's replies being written to stop; returns their ids."""
    with transaction.atomic():
        conversation = _owned(user, conversation_id)
        ids = services.streaming_ids(conversation.pk)
        for message_id in ids:
            publish(control_group(message_id), {"type": "generation.stop"})
    return ids


def do_update(
    user: User,
    conversation_id: int,
    *,
    title: str | None = None,
    model: str | None = None,
    system_prompt: str | None = None,
    temperature: float | tuning.Keep | None = tuning.KEEP,
    max_output_tokens: int | tuning.Keep | None = tuning.KEEP,
    pinned: bool | None = None,
    project: int | projects.Keep | None = projects.KEEP,
    tools: dict[str, Any] | None = None,
) -> Conversation:
    """Changes the title, model, system prompt, sampling settings, tools or pin (those given); `project=`
    moves it (None: out of any)."""
    with transaction.atomic():
        conversation = _owned(user, conversation_id)
        if tools is not None:
            conversation.tools = tool_choice.clean(user, tools)
            conversation.save(update_fields=["tools"])
        services.update_conversation(
            conversation,
            title=title,
            model_id=model,
            system_prompt=system_prompt,
            temperature=temperature,
            max_output_tokens=max_output_tokens,
        )
        projects.place(user, conversation, pinned=pinned, project=project)
        _publish_conversation(conversation)
    return conversation


def do_delete(user: User, conversation_id: int) -> None:
    """Deletes the conversation and its messages; replies being written stop, open sockets are told."""
    with transaction.atomic():
        conversation = _owned(user, conversation_id)
        streaming = services.streaming_ids(conversation.pk)
        services.delete_conversation(conversation)
        for message_id in streaming:
            publish(control_group(message_id), {"type": "generation.stop"})
        publish(conversation_group(conversation_id), {"type": "chat.deleted"})


def do_expire_stale(alive: Collection[int] = ()) -> list[Message]:
    """Marks replies whose worker died as interrupted (any conversation's, but the replies `alive`)
    and says so; returns them."""
    if not services.has_stale(alive):
        return []  # the usual case, answered by one read without a transaction
    with transaction.atomic():
        stale = services.expire_stale(alive)
        for message in stale:
            _publish_message(message)
    return stale
