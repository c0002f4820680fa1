"""A conversation's messages as a tree, and the branch on screen.

Regenerating a reply or editing an earlier question adds a sibling rather than overwriting, so
nothing a person wrote or received is lost. Each message points at its `parent` (the roots have
none); among one parent's children (and among the roots) exactly one is `active`. The branch on
screen starts at the active root and follows active children down: it is what the page shows, what
the API returns by default and the history sent upstream. A flag per message, rather than a pointer
per parent, treats the roots like any other siblings and needs no second table.

Children are always created after their parent, so along any branch ids increase: the page orders
a branch by id.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

from conversations.models import Conversation, Message


class _Node(NamedTuple):
    pk: int
    parent_id: int | None
    active: bool


def _children(conversation_id: int) -> dict[int | None, list[_Node]]:
    """The shape of the tree alone (no text), so finding a branch reads little even in a long conversation."""
    children: dict[int | None, list[_Node]] = defaultdict(list)
    rows = (
        Message.objects.filter(conversation_id=conversation_id).order_by("id").values_list("pk", "parent_id", "active")
    )
    for row in rows:
        node = _Node(*row)
        children[node.parent_id].append(node)
    return children


def _walk(children: dict[int | None, list[_Node]]) -> list[tuple[int, list[int]]]:
    """The active branch as (id, its siblings' ids) pairs, root first."""
    path: list[tuple[int, list[int]]] = []
    parent: int | None = None
    while kids := children.get(parent):
        # Should no sibling be marked (data written by hand), the newest one is shown.
        chosen = next((n for n in reversed(kids) if n.active), kids[-1])
        path.append((chosen.pk, [n.pk for n in kids]))
        parent = chosen.pk
    return path


def active_ids(conversation_id: int) -> list[int]:
    return [pk for pk, _siblings in _walk(_children(conversation_id))]


def active_path(conversation_id: int) -> list[Message]:
    """The branch on screen, root first; each message carries `sibling_ids` (its versions, itself included)."""
    path = _walk(_children(conversation_id))
    messages = Message.objects.select_related("model").in_bulk([pk for pk, _siblings in path])
    shown = []
    for pk, siblings in path:
        message = messages[pk]
        message.sibling_ids = siblings  # type: ignore[attr-defined]
        shown.append(message)
    return shown


def all_messages(conversation_id: int) -> list[Message]:
    """Every message of every branch, oldest first, each with its `sibling_ids`."""
    siblings = {node.pk: [n.pk for n in kids] for kids in _children(conversation_id).values() for node in kids}
    messages = list(Message.objects.filter(conversation_id=conversation_id).select_related("model").order_by("id"))
    for message in messages:
        message.sibling_ids = siblings.get(message.pk, [message.pk])  # type: ignore[attr-defined]
    return messages


def sibling_ids(message: Message) -> list[int]:
    return list(
        Message.objects.filter(conversation_id=message.conversation_id, parent_id=message.parent_id)
        .order_by("id")
        .values_list("pk", flat=True)
    )


def ancestors(message: Message) -> list[Message]:
    """The messages before `message` on its branch, root first (the history of a reply)."""
    parents = dict(Message.objects.filter(conversation_id=message.conversation_id).values_list("pk", "parent_id"))
    chain: list[int] = []
    seen: set[int] = set()
    parent_id = message.parent_id
    while parent_id is not None and parent_id in parents and parent_id not in seen:
        seen.add(parent_id)
        chain.append(parent_id)
        parent_id = parents[parent_id]
    chain.reverse()
    found = Message.objects.in_bulk(chain)
    return [found[pk] for pk in chain]


def add(
    conversation: Conversation, parent_id: int | None, *, siblings: list[int] | None = None, **fields: object
) -> Message:
    """A new message under `parent_id`, made the active one of its siblings.

    `siblings`: the ids already under that parent, when the caller knows them; the message then
    carries its `sibling_ids` and serialising it asks the database for none.
    """
    if siblings is None or siblings:  # an only child has no sibling to turn off
        Message.objects.filter(conversation=conversation, parent_id=parent_id, active=True).update(active=False)
    message = Message.objects.create(conversation=conversation, parent_id=parent_id, active=True, **fields)
    if siblings is not None:
        message.sibling_ids = [*siblings, message.pk]  # type: ignore[attr-defined]
    return message


def append(conversation: Conversation, **fields: object) -> Message:
    """A new message at the end of the branch on screen."""
    children = _children(conversation.pk)
    path = _walk(children)
    parent_id = path[-1][0] if path else None
    return add(conversation, parent_id, siblings=[n.pk for n in children.get(parent_id, [])], **fields)


def choose(conversation: Conversation, target: Message) -> tuple[list[int], list[Message]]:
    """Shows the version `target` (and the branch below it that it last showed).

    Returns the ids that left the screen and the messages that came onto it, root side first.
    """
    before = active_ids(conversation.pk)
    Message.objects.filter(conversation=conversation, parent_id=target.parent_id).exclude(pk=target.pk).update(
        active=False
    )
    Message.objects.filter(pk=target.pk).update(active=True)
    after = active_path(conversation.pk)
    shown = {m.pk for m in after}
    kept = set(before)
    removed = [pk for pk in before if pk not in shown]
    # The chosen message is sent even when already on screen: its "N / M" is what the page redraws.
    added = [m for m in after if m.pk not in kept or m.pk == target.pk]
    return removed, added
