"""Share pages: the read-only copy a link opens (no login), and the owner revoking a link."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from conversations import shares


@never_cache  # a revoked link must stop working at once, also for caches on the way
@require_GET
def shared(request: HttpRequest, token: str) -> HttpResponse:
    share = shares.shared(token)
    if share is None:
        raise Http404("No such shared conversation.")
    response = render(request, "conversations/shared.html", {"share": share, "snapshot": share.snapshot})
    response["X-Robots-Tag"] = "noindex, nofollow"
    # The token is the whole secret; a link followed from the page must not carry it in a Referer.
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
@login_required
@require_POST
def revoke(request: HttpRequest, share_id: int) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    if not shares.revoke(user, share_id):
        raise Http404("No such share link.")
    messages.success(request, "The share link is revoked; it no longer opens.")
    return redirect("profile")
