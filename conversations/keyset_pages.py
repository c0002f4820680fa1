"""DRF glue of the conversation list: keyset pages on ?cursor=, and the Markdown renderer of exports."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from conversations import export, listing
from conversations.models import Conversation
from core.rest import Pages


class ConversationPages(Pages):
    """?page=N as everywhere in the API; or ?cursor= (empty for the first page) for keyset pages, which
    answer {"next", "next_cursor", "results"} and cost the same however deep (the chat's list reads these)."""

    keyset = False
    keyset_request: Request
    next_cursor: str | None = None

    def paginate_queryset(  # type: ignore[override]
        self, queryset: QuerySet[Conversation], request: Request, view: Any = None
    ) -> list[Conversation] | None:
        if "cursor" not in request.query_params:
            return super().paginate_queryset(queryset, request, view)
        self.keyset = True
        self.keyset_request = request
        size = self.get_page_size(request) or self.page_size
        try:
            rows, self.next_cursor = listing.page(queryset, request.query_params["cursor"], size)
        except listing.BadCursor as exc:
            raise ValidationError({"cursor": [str(exc)]}) from None
        return rows

    def get_paginated_response(self, data: Any) -> Response:
        if not self.keyset:
            return super().get_paginated_response(data)
        following = None
        if self.next_cursor:
            following = replace_query_param(self.keyset_request.build_absolute_uri(), "cursor", self.next_cursor)
        return Response({"next": following, "next_cursor": self.next_cursor, "results": data})


class MarkdownRenderer(BaseRenderer):
    """?format=md of an export. An error answer stays JSON, in the API's one error shape."""

    media_type = "text/markdown"
    format = "md"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if isinstance(data, dict) and "messages" in data and "error" not in data:
            return export.to_markdown(data).encode()
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return json.dumps(data).encode()
