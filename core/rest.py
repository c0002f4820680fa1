"""The REST API's pagination, throttle and JSON parser (the defaults in settings.REST_FRAMEWORK), and
the mixin every view of it starts with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from core.clock import clock
from core.inputs import BadInput, parse_json, query_int

if TYPE_CHECKING:  # DRF imports this module while rest_framework.views is still loading
    from rest_framework.views import APIView


class Pages(PageNumberPagination):
    """?page=N&page_size=M (at most 200); answers {"count", "next", "previous", "results"}."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    # Beyond any page a PostgreSQL OFFSET could reach; pages past the last are DRF's 404.
    max_page = 2**31

    def get_page_size(self, request: Request) -> int:
        return _query_int(request, "page_size", default=self.page_size, maximum=self.max_page_size)

    def get_page_number(self, request: Request, paginator: Any) -> int | str:
        if request.query_params.get("page") in self.last_page_strings:
            return "last"
        return _query_int(request, "page", default=1, maximum=self.max_page)


def _query_int(request: Request, name: str, *, default: int, maximum: int) -> int:
    try:
        return query_int(request.query_params, name, default=default, minimum=1, maximum=maximum)
    except BadInput as exc:
        raise ValidationError({name: [str(exc)]}) from None


class SafeJSONParser(JSONParser):
    """JSON bodies within MAX_REQUEST_BYTES and 32 levels deep; anything else is a 400, never a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read(settings.MAX_REQUEST_BYTES + 1) if stream is not None else b""
        try:
            return parse_json(raw, max_bytes=settings.MAX_REQUEST_BYTES)
        except BadInput as exc:
            raise ParseError(str(exc)) from None


class PerUserThrottle(SimpleRateThrottle):
    """API_REQUESTS_PER_MINUTE per user (per address before sign-in); 0 lifts it. Reads the clock tests set."""

    scope = "api"

    @staticmethod
    def timer() -> float:
        return clock().time()

    def get_rate(self) -> str | None:
        per_minute = settings.API_REQUESTS_PER_MINUTE
        return f"{per_minute}/min" if per_minute else None

    def get_cache_key(self, request: Request, view: APIView) -> str:
        user = request.user
        ident = f"user-{user.pk}" if user is not None and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class Private:
    """Mixed into every API view: answers are one user's data, for no cache to keep (errors too)."""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        response.headers.setdefault("Cache-Control", "no-store")
        return response
