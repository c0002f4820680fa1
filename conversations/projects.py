"""Projects: a user's folders of conversations, each with the model and system prompt its new chats
start with. Another user's project does not exist for anyone else (the same refusal as a missing one).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from django.db import transaction
from django.db.models import Count, QuerySet

from accounts.models import User
from conversations import services, tool_choice
from conversations.models import Conversation, Project
from core.inputs import BadInput, check_text

MAX_PROJECTS = 200
NAME_CHARS = 100


class ProjectGone(services.ChatError):
    def __init__(self) -> None:
        super().__init__("There is no such project.", param="project")


def projects_for(user: User) -> QuerySet[Project]:
    return (
        Project.objects.filter(owner=user)
        .select_related("model")
        .annotate(conversation_count=Count("conversations"))
        .order_by("name", "id")
    )


def owned(user: User, project_id: int | str) -> Project:
    try:
        pk = int(project_id)
    except (TypeError, ValueError):
        raise ProjectGone() from None
    project = Project.objects.select_related("model").filter(pk=pk, owner=user).first()
    if project is None:
        raise ProjectGone()
    return project


def _name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise services.ChatError("A project needs a name.", param="name")
    if len(name) > NAME_CHARS:
        raise services.ChatError(f"A project's name has at most {NAME_CHARS} characters.", param="name")
    try:
        return check_text(name, "The name")
    except BadInput as exc:
        raise services.ChatError(str(exc), param="name") from None


def create(
    user: User, name: str, model: str | None = None, system_prompt: str = "", tools: dict[str, Any] | None = None
) -> Project:
    with transaction.atomic():
        # Serialises one user's creations so the cap holds under concurrent requests.
        User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()
        if Project.objects.filter(owner=user).count() >= MAX_PROJECTS:
            raise services.ChatError(f"You have {MAX_PROJECTS} projects, the most there can be; delete one first.")
        return Project.objects.create(
            owner=user,
            name=_name(name),
            model=services.model_by_public_id(model, user),
            system_prompt=(system_prompt or "").strip(),
            tools=tool_choice.clean(user, tools),
        )


def update(
    user: User,
    project_id: int,
    *,
    name: str | None = None,
    model: str | None = None,
    system_prompt: str | None = None,
    tools: dict[str, Any] | None = None,
) -> Project:
    with transaction.atomic():
        project = owned(user, project_id)
        if tools is not None:
            project.tools = tool_choice.clean(user, tools)
        if name is not None:
            project.name = _name(name)
        if model is not None:
            project.model = services.model_by_public_id(model, user)
        if system_prompt is not None:
            project.system_prompt = system_prompt.strip()
        project.save()
    return project


def delete(user: User, project_id: int) -> None:
    """Deletes the project; its conversations stay, outside any project."""
    owned(user, project_id).delete()


def starting_in(
    user: User, project_id: int | None, model: str | None, system_prompt: str
) -> tuple[Project | None, str | None, str]:
    """The project a new conversation starts in, and its model and system prompt: those asked for,
    else the project's."""
    if project_id is None:
        return None, model, system_prompt
    project = owned(user, project_id)
    if not model and project.model is not None:
        model = project.model.public_id
    if not system_prompt.strip():
        system_prompt = project.system_prompt
    return project, model, system_prompt


class Keep(Enum):
    """An argument left as it is (None has a meaning of its own: out of any project)."""

    KEEP = "keep"


KEEP = Keep.KEEP


def place(
    user: User, conversation: Conversation, *, pinned: bool | None = None, project: int | Keep | None = KEEP
) -> None:
    """Pins or unpins the conversation, and moves it into one of the user's projects (or out: None)."""
    fields = []
    if pinned is not None:
        conversation.pinned = pinned
        fields.append("pinned")
    if project is not KEEP:
        conversation.project = None if project is None else owned(user, project)
        fields.append("project")
    if fields:
        conversation.save(update_fields=fields)
