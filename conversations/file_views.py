"""Chat attachments over HTTP: upload (POST /files/), download and removal (/files/<id>/), owner only.

An upload is a multipart POST from the signed-in page (session and CSRF token) with one `file`; the
answer is the attachment as the API shapes it, or {"error": {...}} with 400/413/415/422. The socket's
"send" frame then names the ids. A download is always an attachment (never rendered as a page), with
`nosniff` and a Content-Security-Policy that lets nothing run, and is served to the uploader alone:
anyone else gets a 404, as if the file did not exist.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import User
from conversations import files
from conversations.models import Attachment
from conversations.serializers import AttachmentSerializer
from core.errors import error_body

# Room for the multipart framing around the file itself.
MULTIPART_SLACK = 64 * 1024
# Nothing in a served file may run, load or be framed, whatever a browser makes of it.
DOWNLOAD_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"


def _refused(status: int, message: str, code: str, param: str | None = "file") -> JsonResponse:
    return JsonResponse(error_body(status, message, code, param), status=status)


def _user(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) and user.is_authenticated else None


@never_cache
@require_POST
def upload(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if user is None:
        return _refused(401, "Log in to attach files.", "not_authenticated", None)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > settings.ATTACHMENT_MAX_BYTES + MULTIPART_SLACK:
        # Refused before the body is parsed: an oversized upload is not spooled to disk first.
        try:
            files.check_size(declared)
        except files.FileRefused as exc:
            return _refused(exc.status, str(exc), exc.code)
    uploaded = request.FILES.get("file")
    if uploaded is None:
        return _refused(400, "Send the file as the multipart field “file”.", "missing_file")
    try:
        files.check_size(uploaded.size or 0)
        # Browsers write a name's quote as %22 in a multipart header (HTML's form encoding).
        name = (uploaded.name or "").replace("%22", '"')
        attachment = files.store(user, name, uploaded.read())
    except files.FileRefused as exc:
        return _refused(exc.status, str(exc), exc.code)
    return JsonResponse(AttachmentSerializer(attachment).data, status=201)


@never_cache
@require_http_methods(["GET", "HEAD", "DELETE"])
def attachment(request: HttpRequest, pk: int) -> HttpResponseBase:
    user = _user(request)
    if user is None:
        return _refused(401, "Log in to see your files.", "not_authenticated", None)
    found = files.owned(user, pk)
    if found is None:
        raise Http404("No such file.")
    if request.method == "DELETE":
        return _remove(found)
    return _download(found)


def _remove(attachment: Attachment) -> HttpResponse:
    """Only a file not yet sent may be removed: a sent one belongs to its message."""
    if attachment.message_id is not None:
        return _refused(409, "This file belongs to a sent message.", "attachment_sent", None)
    attachment.delete()
    return HttpResponse(status=204)


def _download(attachment: Attachment) -> HttpResponseBase:
    try:
        # Whole: files are small (ATTACHMENT_MAX_BYTES), and bytes need no thread to stream under ASGI.
        data = files.read(attachment)
    except FileNotFoundError:
        raise Http404("This file is gone from storage.") from None
    # Raster images keep their sniffed type (an <img> shows them); everything else is opaque bytes.
    image = attachment.kind == Attachment.Kind.IMAGE and attachment.content_type in files.IMAGE_TYPES
    response = HttpResponse(data, content_type=attachment.content_type if image else "application/octet-stream")
    response["Content-Disposition"] = content_disposition_header(True, attachment.name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = DOWNLOAD_CSP
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
