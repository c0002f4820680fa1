"""The Knowledge page (/knowledge/): a user's knowledge bases, their files and states, and which chats search
them; plus the chat's picker of a conversation's knowledge bases (/c/<id>/knowledge/).

Forms post and redirect (they work without script); the page's module (static/js/knowledge.js) uploads by
button or drop and redraws the files from `…/files/` (JSON) while any is being ingested. Another user's
knowledge base, file, project or conversation is a 404, as a missing one is.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from conversations import files, knowledge, projects
from conversations.errors import ChatError
from conversations.file_views import MULTIPART_SLACK
from core.errors import error_body
from knowledge import embedders, quotas, services
from knowledge.extract import ExtractionFailed
from knowledge.models import VectorStore

MAX_FILES_PER_UPLOAD = 20


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _store(request: HttpRequest, store_id: str) -> VectorStore:
    try:
        return knowledge.owned_store(_user(request), store_id)
    except knowledge.KnowledgeGone:
        raise Http404("No such knowledge base.") from None


def _refused(status: int, message: str, code: str, param: str | None = None) -> JsonResponse:
    return JsonResponse(error_body(status, message, code, param), status=status)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        if not name:
            messages.error(request, "A knowledge base needs a name.")
            return redirect("knowledge")
        store = services.create_store(user, name, knowledge.default_embedding_model(user))
        return redirect("knowledge-store", store.public_id)
    context = {
        "stores": services.stores_of(user),
        "usage": quotas.usage(user),
        "full_text_only": knowledge.default_embedding_model(user) is None,
    }
    return render(request, "knowledge/index.html", context)


@never_cache
@login_required
@require_GET
def store_page(request: HttpRequest, store_id: str) -> HttpResponse:
    store = _store(request, store_id)
    context = {
        "store": store,
        "files": knowledge.store_files(store),
        "projects": projects.projects_for(_user(request)),
        "searching": set(knowledge.projects_searching(store)),
        "full_text_only": store.embedding_model_id is None or not embedders.available(),
        "max_bytes": settings.KNOWLEDGE_MAX_FILE_BYTES,
    }
    return render(request, "knowledge/store.html", context)


@login_required
@require_POST
def rename(request: HttpRequest, store_id: str) -> HttpResponse:
    store = _store(request, store_id)
    name = request.POST.get("name", "").strip()
    if name:
        services.update_store(store, name=name[: knowledge.NAME_CHARS])
    else:
        messages.error(request, "A knowledge base needs a name.")
    return redirect("knowledge-store", store.public_id)


@login_required
@require_POST
def delete(request: HttpRequest, store_id: str) -> HttpResponse:
    store = _store(request, store_id)
    name = str(store)
    knowledge.delete_with_files(store)
    messages.success(request, f"“{name}” was deleted.")
    return redirect("knowledge")


@login_required
@require_POST
def set_projects(request: HttpRequest, store_id: str) -> HttpResponse:
    store = _store(request, store_id)
    try:
        ids = [int(value) for value in request.POST.getlist("project")]
        knowledge.set_projects(_user(request), store, ids)
    except (ValueError, ChatError):
        raise Http404("No such project.") from None
    messages.success(request, "Saved: the chats of the projects ticked search this knowledge base.")
    return redirect("knowledge-store", store.public_id)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def store_files(request: HttpRequest, store_id: str) -> HttpResponse:
    """GET: the store's files (JSON). POST: uploads (multipart `file`, one or more), each queued for ingestion;
    JSON when asked for it (the page's script), else back to the page."""
    store = _store(request, store_id)
    if request.method == "GET":
        return JsonResponse({"files": knowledge.store_files(store)})
    wants_json = "application/json" in request.headers.get("Accept", "")
    status, problem = _upload(request, store)
    if wants_json:
        if problem is not None:
            return _refused(status, problem, "upload_refused", "file")
        return JsonResponse({"files": knowledge.store_files(store)}, status=201)
    if problem is not None:
        messages.error(request, problem)
    return redirect("knowledge-store", store.public_id)


def _upload(request: HttpRequest, store: VectorStore) -> tuple[int, str | None]:
    """Keeps and queues the request's files; the status and the reason of the first refused, if any."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    limit = settings.KNOWLEDGE_MAX_FILE_BYTES
    if declared > MAX_FILES_PER_UPLOAD * limit + MULTIPART_SLACK:
        return 413, "The upload is too large."
    uploads = request.FILES.getlist("file")
    if not uploads:
        return 400, "Choose a file to upload."
    if len(uploads) > MAX_FILES_PER_UPLOAD:
        return 400, f"At most {MAX_FILES_PER_UPLOAD} files at once."
    for upload in uploads:
        if (upload.size or 0) > limit:
            return 413, f"“{upload.name}” is too large: at most {limit // (1024 * 1024)} MB per file."
        # Browsers write a name's quote as %22 in a multipart header; the name is for display alone.
        name = files.clean_name((upload.name or "").replace("%22", '"'))
        try:
            stored = services.store_file(_user(request), name, upload.read())
        except ExtractionFailed as exc:
            return 415, f"“{name}”: {exc}"
        except quotas.QuotaExceeded as exc:
            return 413, str(exc)
        services.add_file(store, stored)
    return 201, None


@login_required
@require_POST
def delete_file(request: HttpRequest, store_id: str, file_id: str) -> HttpResponse:
    store = _store(request, store_id)
    try:
        file = knowledge.owned_file(_user(request), file_id)
    except knowledge.KnowledgeGone:
        raise Http404("No such file.") from None
    if not knowledge.forget_file(store, file):
        raise Http404("No such file in this knowledge base.")
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"files": knowledge.store_files(store)})
    return redirect("knowledge-store", store.public_id)


@never_cache
@login_required
@require_http_methods(["GET", "PUT"])
def conversation_knowledge(request: HttpRequest, pk: int) -> HttpResponse:
    """The chat's picker: GET the user's knowledge bases and those the conversation searches; PUT
    {"knowledge_bases": ["vs_…", …]} to choose them."""
    user = _user(request)
    if request.method == "PUT":
        try:
            body = json.loads(request.body or b"{}")
            ids = body.get("knowledge_bases") if isinstance(body, dict) else None
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                return _refused(400, 'Send {"knowledge_bases": [ids]}.', "invalid", "knowledge_bases")
            knowledge.attach(user, pk, ids)
        except json.JSONDecodeError:
            return _refused(400, "The body is not JSON.", "invalid")
        except ChatError as exc:
            return _refused(404, str(exc), "not_found", exc.param)
    conversation = knowledge.owned_conversation(user, pk)
    if conversation is None:
        return _refused(404, "This conversation no longer exists.", "not_found")
    attached = {store.public_id for store in knowledge.attached_to(conversation)}
    return JsonResponse(
        {
            "knowledge_bases": [
                {"id": s.public_id, "name": str(s), "attached": s.public_id in attached}
                for s in services.stores_of(user)
                if s.pk != conversation.own_knowledge_id
            ],
            "page_url": reverse("knowledge"),
        }
    )
