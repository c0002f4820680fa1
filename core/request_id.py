"""The id of the request being served, for its answer's `x-request-id`, its ledger row and its log lines.

Set once per /v1 request (gateway.asgi) in a context variable, so every task the request starts
(tasks copy the context when created) and every log line written while serving it carry it:
the console handler's `RequestIdFilter` adds ` [req_...]` after the logger's name.
"""

from __future__ import annotations

import logging
import uuid
from contextvars import ContextVar

current_request_id: ContextVar[str] = ContextVar("current_request_id", default="")


def new_request_id() -> str:
    """A fresh id in OpenAI's style (`req_` and 32 hex digits), set as the current one."""
    request_id = f"req_{uuid.uuid4().hex}"
    current_request_id.set(request_id)
    return request_id


class RequestIdFilter(logging.Filter):
    """Gives each record `request_id`: ` [req_...]` while a request is served, else empty."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id.get()
        record.request_id = f" [{request_id}]" if request_id else ""
        return True
