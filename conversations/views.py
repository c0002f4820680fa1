from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from accounts.models import User
from catalogue.cards import model_card
from catalogue.preparing import preparing
from conversations import listing, projects, services, tool_choice
from conversations.project_api import project_data
from conversations.routing import socket_path
from conversations.serializers import conversation_data, message_data
from core.inputs import BadInput


@never_cache
@login_required
def chat(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    query = request.GET.get("q", "")
    conversation = services.get_conversation(user, pk) if pk is not None else None
    messages = []
    if conversation is not None:
        messages = [message_data(m) for m in services.messages_of(conversation.pk)]
    try:
        conversations, next_cursor = listing.page(listing.listed(user, query))
    except BadInput:  # a search no conversation can match (a NUL character)
        conversations, next_cursor = [], None
    own_projects = list(projects.projects_for(user))
    models = list(services.chat_models(user))
    tool_options = tool_choice.options(user)
    context: dict[str, Any] = {
        "conversations": conversations,
        "query": query,
        "projects": own_projects,
        "conversation": conversation,
        "models": models,
        # The bundled local model while `make run` still installs or starts it: the page says it is coming.
        "preparing": [] if models else sorted(preparing().items()),
        "current_model": (
            conversation.model if conversation and conversation.model else (models[0] if models else None)
        ),
        "socket_path": socket_path("{id}"),
        "tool_options": tool_options,
        "initial": {
            "conversation": conversation_data(conversation) if conversation else None,
            "messages": messages,
            "list": {"results": [conversation_data(c) for c in conversations], "next_cursor": next_cursor},
            "projects": [project_data(p) for p in own_projects],
            "models": [model_card(m) for m in models],
            "tools": tool_options,
        },
    }
    return render(request, "conversations/chat.html", context)
