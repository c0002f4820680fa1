"""Knowledge bases in the chat: which ones a conversation searches, the passages found for a question, how
they reach the model and how they are kept with the reply (its `sources`).

A conversation searches the knowledge bases attached to it, those of its project, and its own one: where a
document too long for the model's context goes to be searched instead of being refused. Every store is the
conversation owner's: another user's id is refused as a missing one (KnowledgeGone).

A model that takes tools is offered the `file_search` tool over them (tools.file_search, run in the tool
loop): it searches when and for what it needs, and the passages it was given are kept with the reply. Models
without tools get the passages in the prompt: the question's hybrid search results (knowledge.search),
numbered, ahead of the question, within a share of the prompt's room.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Exists, OuterRef
from django.db.models.signals import post_delete

from accounts.models import User
from catalogue.models import LanguageModel
from conversations.errors import ChatError, ConversationGone
from conversations.models import Attachment, Conversation, Message, Project
from core.clock import clock
from core.db import db
from gateway.auth import find_usable_model
from knowledge import embedders, quotas, search, services
from knowledge.extract import PDF, ExtractionFailed
from knowledge.models import StoredFile, VectorStore, VectorStoreFile
from tools.file_search import FileSearch
from tools.registry import ToolChoice
from tools.results import Source
from usage.tokens import estimate_tokens

log = logging.getLogger(__name__)

MAX_SOURCES = 6
NAME_CHARS = 256  # VectorStore.name's
# What a reply keeps of each passage (the passage shown on click; the model read the whole chunk).
SOURCE_CHARS = 4000
# Passages take at most this share of the prompt's room; the history gets the rest.
PASSAGES_SHARE = 0.4
# How long a reply waits for its message's files to be ingested before answering without them.
INGEST_WAIT = timedelta(minutes=5)
INGEST_POLL_SECONDS = 0.5


class KnowledgeGone(ChatError):
    def __init__(self) -> None:
        super().__init__("There is no such knowledge base.", param="knowledge_bases")


def owned_store(user: User, public_id: str) -> VectorStore:
    store = VectorStore.objects.filter(owner=user, public_id=public_id).first()
    if store is None:
        raise KnowledgeGone()
    return store


def _owned_stores(user: User, public_ids: Iterable[str]) -> list[VectorStore]:
    wanted = {str(i) for i in public_ids}
    found = list(VectorStore.objects.filter(owner=user, public_id__in=wanted))
    if len(found) != len(wanted):
        raise KnowledgeGone()
    return found


def default_embedding_model(user: User) -> LanguageModel | None:
    """The embedding model new knowledge bases use (KNOWLEDGE_EMBEDDING_MODEL, as for /v1/vector_stores) when
    the user may use it; None (full-text search alone) otherwise."""
    name = settings.KNOWLEDGE_EMBEDDING_MODEL
    model = find_usable_model(name, user) if name and embedders.available() else None
    return model if model is not None and model.kind == LanguageModel.Kind.EMBEDDING else None


def attached_to(conversation: Conversation) -> list[VectorStore]:
    return list(conversation.knowledge_bases.filter(owner=conversation.owner_id).order_by("name", "id"))


def attach(user: User, conversation_id: int, store_ids: Sequence[str]) -> list[VectorStore]:
    """Makes `store_ids` the knowledge bases the user's conversation searches (with its project's)."""
    with transaction.atomic():
        conversation = Conversation.objects.filter(pk=conversation_id, owner=user).first()
        if conversation is None:
            raise ConversationGone()
        stores = _owned_stores(user, store_ids)
        conversation.knowledge_bases.set(stores)
    return stores


def projects_searching(store: VectorStore) -> list[int]:
    return list(Project.objects.filter(owner=store.owner_id, knowledge_bases=store).values_list("pk", flat=True))


def set_projects(user: User, store: VectorStore, project_ids: Iterable[int]) -> None:
    """Makes the store searched by exactly these of the user's projects' chats."""
    wanted = set(project_ids)
    projects = list(Project.objects.filter(owner=user, pk__in=wanted))
    if len(projects) != len(wanted) or store.owner_id != user.pk:
        raise ChatError("There is no such project.", param="projects")
    with transaction.atomic():
        for project in Project.objects.filter(owner=user):
            if project.pk in wanted:
                project.knowledge_bases.add(store)
            else:
                project.knowledge_bases.remove(store)


@functools.cache
def _searched_sql() -> str:
    """The stores of a conversation, its project and its own knowledge base, the owner's alone, each once.

    Written out once rather than built by the ORM on every reply: composing this query cost a chat reply
    as much CPU as running it, and most conversations search nothing.
    """
    stores, by_chat, by_project = (
        VectorStore._meta.db_table,
        Conversation.knowledge_bases.through._meta.db_table,
        Project.knowledge_bases.through._meta.db_table,
    )
    return (
        f"SELECT * FROM {stores} WHERE owner_id = %s AND (id = %s"  # noqa: S608 (table names only)
        f" OR id IN (SELECT vectorstore_id FROM {by_chat} WHERE conversation_id = %s)"
        f" OR id IN (SELECT vectorstore_id FROM {by_project} WHERE project_id = %s)) ORDER BY id"
    )


def searched_by(conversation: Conversation) -> list[VectorStore]:
    """Every store a reply in the conversation searches, each once, the owner's alone (one query)."""
    params = [conversation.owner_id, conversation.own_knowledge_id, conversation.pk, conversation.project_id]
    return list(VectorStore.objects.raw(_searched_sql(), params))


def with_file_search(choice: ToolChoice | None, stores: Sequence[VectorStore], room_tokens: int) -> ToolChoice:
    """The conversation's tool choice with a file_search tool over its knowledge bases, each search's passages
    within PASSAGES_SHARE of `room_tokens`."""
    ids = tuple(store.public_id for store in stores)
    searching = FileSearch(ids, max_results=MAX_SOURCES, max_tokens=int(room_tokens * PASSAGES_SHARE))
    return replace(choice or ToolChoice(), file_search=searching)


def add_found(message_id: int, found: Sequence[Source]) -> None:
    """The passages a file_search call gave the model, kept with its reply as sources (numbered as the model
    read them)."""
    message = Message.objects.filter(pk=message_id).only("sources").first()
    if message is None or not found:
        return
    kept = list(message.sources or [])
    for source in found:
        kept.append(
            {
                "n": source.number,
                "filename": source.title,
                "page": source.page,
                "section": source.section,
                "text": source.snippet[:SOURCE_CHARS],
            }
        )
    Message.objects.filter(pk=message_id).update(sources=kept)


def find_sources(
    conversation: Conversation, stores: Sequence[VectorStore], question: str, room_tokens: int
) -> list[dict[str, Any]]:
    """The passages of `stores` (the conversation's knowledge bases) that best answer `question`, best first,
    within PASSAGES_SHARE of `room_tokens`; [] when there are none."""
    question = question.strip()[: search.MAX_QUERY_CHARS]
    stores = stores if question else []
    try:
        hits = (
            search.search_stores(
                conversation.owner, [store.public_id for store in stores], question, max_results=MAX_SOURCES
            )
            if stores
            else []
        )
    except (search.SearchRefused, embedders.EmbeddingUnavailable, VectorStore.DoesNotExist):
        hits = []
    except DatabaseError:  # the search's time limit: the reply goes on without passages rather than failing
        log.warning("knowledge search for conversation %s failed", conversation.pk, exc_info=True)
        hits = []
    budget = int(room_tokens * PASSAGES_SHARE)
    sources: list[dict[str, Any]] = []
    seen: set[int] = set()
    for hit in hits:
        cost = estimate_tokens(hit.text)
        if hit.chunk_id in seen or (sources and cost > budget) or len(sources) >= MAX_SOURCES:
            continue
        seen.add(hit.chunk_id)
        budget -= cost
        sources.append(
            {
                "n": len(sources) + 1,
                "filename": hit.filename,
                "page": hit.page,
                "section": hit.section,
                "text": hit.text[:SOURCE_CHARS],
            }
        )
    return sources


def _passages(sources: Sequence[dict[str, Any]]) -> str:
    lines = [
        "Passages from the user's documents that may answer the question below. Use them where they help and "
        "cite them by number, like [1]."
    ]
    for source in sources:
        where = source["filename"] + (f", page {source['page']}" if source["page"] else "")
        where = where.replace('"', "'")
        lines.append(f'<source n="{source["n"]}" from="{where}">\n{source["text"]}\n</source>')
    return "\n\n".join(lines)


def with_sources(content: str | list[dict[str, Any]], sources: Sequence[dict[str, Any]]) -> Any:
    """A user message's content with the passages ahead of it."""
    if not sources:
        return content
    block = _passages(sources)
    if isinstance(content, str):
        return f"{block}\n\n{content}" if content else block
    return [{"type": "text", "text": block}, *content]


def retrieve_instead(user: User, conversation: Conversation, attachments: Sequence[Attachment]) -> None:
    """Puts documents too long for the context into the conversation's own knowledge base (queued for
    ingestion), marked to be searched rather than pasted. Inside the caller's transaction."""
    store = conversation.own_knowledge
    if store is None:
        name = f"Files of “{conversation.title or 'a chat'}”"[:NAME_CHARS]
        store = services.create_store(user, name, default_embedding_model(user), {"conversation": conversation.pk})
        conversation.own_knowledge = store
        conversation.save(update_fields=["own_knowledge"])
    for attachment in attachments:
        try:
            stored = services.store_file(user, attachment.name, _searchable_bytes(attachment))
        except (ExtractionFailed, quotas.QuotaExceeded) as exc:
            raise ChatError(f"“{attachment.name}” is too long to read whole and cannot be searched: {exc}") from None
        services.add_file(store, stored)
        attachment.retrieved = True
        attachment.save(update_fields=["retrieved"])


def _searchable_bytes(attachment: Attachment) -> bytes:
    """A PDF as it is (ingested page by page); any other document as the text the chat read from it."""
    if attachment.content_type == PDF:
        with attachment.file.storage.open(attachment.file.name or "", "rb") as handle:
            data: bytes = handle.read()
        return data
    return attachment.text.encode()


class StillIngesting(Exception):
    """A file of the conversation's own knowledge base waits for the ingestion worker."""


def ingesting(conversation: Conversation) -> bool:
    """Whether the conversation's own knowledge base has a file waiting for the worker (no query without one)."""
    own = conversation.own_knowledge_id
    waiting = VectorStoreFile.objects.filter(store_id=own, status=VectorStoreFile.Status.IN_PROGRESS)
    return own is not None and waiting.exists()


def _ingesting(conversation_id: int) -> bool:
    conversation = Conversation.objects.filter(pk=conversation_id).only("own_knowledge_id").first()
    return conversation is not None and ingesting(conversation)


async def wait_for_ingestion(conversation_id: int) -> None:
    """Returns once the conversation's own knowledge base has no file waiting for the worker, or after
    INGEST_WAIT (the reply then searches what is ready)."""
    deadline = clock().monotonic() + INGEST_WAIT.total_seconds()
    while clock().monotonic() < deadline:
        if not await db(_ingesting, conversation_id):
            return
        await asyncio.sleep(INGEST_POLL_SECONDS)


def delete_with_files(store: VectorStore) -> None:
    """A knowledge base and the files no other of the owner's knowledge bases holds (the page's "Delete"; the
    API's keeps the files, as OpenAI's does)."""
    elsewhere = VectorStoreFile.objects.filter(file=OuterRef("pk")).exclude(store=store)
    only_here = list(
        StoredFile.objects.filter(in_stores__store=store).exclude(Exists(elsewhere)).values_list("public_id", flat=True)
    )
    with transaction.atomic():
        services.delete_store(store.owner, store.public_id)
        for file_id in only_here:
            services.delete_file(store.owner, file_id)


def _delete_own_knowledge(sender: Any, instance: Conversation, **kwargs: Any) -> None:
    """A deleted conversation's own knowledge base goes with it (however it was deleted), and its files."""
    if instance.own_knowledge_id is not None:
        store = VectorStore.objects.select_related("owner").filter(pk=instance.own_knowledge_id).first()
        if store is not None:
            delete_with_files(store)


def connect_signals() -> None:
    post_delete.connect(_delete_own_knowledge, sender=Conversation, dispatch_uid="conversation-own-knowledge")


def store_files(store: VectorStore) -> list[dict[str, Any]]:
    """The files of a store as the Knowledge page shows them, newest first."""
    return [
        {
            "id": entry.file.public_id,
            "filename": entry.file.filename,
            "bytes": entry.file.bytes,
            "status": entry.status,
            "error": (entry.last_error or {}).get("message", ""),
        }
        for entry in services.files_of(store)
    ]


def owned_file(user: User, public_id: str) -> StoredFile:
    file = StoredFile.objects.filter(owner=user, public_id=public_id).first()
    if file is None:
        raise KnowledgeGone()
    return file


def forget_file(store: VectorStore, file: StoredFile) -> bool:
    """Takes a file out of a store, and deletes it if no other store holds it; False if it was not there."""
    with transaction.atomic():
        try:
            services.remove_file(store, file)
        except VectorStoreFile.DoesNotExist:
            return False
        if not file.in_stores.exists():
            services.delete_file(file.owner, file.public_id)
    return True


def owned_conversation(user: User, pk: int) -> Conversation | None:
    return Conversation.objects.filter(pk=pk, owner=user).first()


def keep_sources(reply: Message, sources: list[dict[str, Any]]) -> None:
    if sources or reply.sources:  # a new reply's are empty already
        Message.objects.filter(pk=reply.pk).update(sources=sources)
