"""Logs as JSON lines (LOG_FORMAT=json): every record one object, and one line per /v1 request.

A request's line (logger `operations.requests`, message "request") tells who, what and how it went:
request id, user id, key prefix, endpoint, model, deployment, status, tokens, cost and latency. It
never carries a secret, a prompt or an answer: only the fields below are written, each read from the
request's ledger row, whose key is there by its public prefix alone.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pythonjsonlogger.json import JsonFormatter

from core.request_id import current_request_id

if TYPE_CHECKING:
    from operations.observe import Exchange

requests_log = logging.getLogger("operations.requests")


class JsonLines(JsonFormatter):
    """python-json-logger's formatter, with the request id as a field of its own (empty outside requests)."""

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record.pop("request_id", None)  # the text format's " [req_...]"
        log_record["request_id"] = current_request_id.get()


def log_request(exchange: Exchange, status: int, latency: float) -> None:
    row = exchange.row
    fields: dict[str, Any] = {"endpoint": exchange.endpoint, "status": status, "latency_ms": round(latency * 1000)}
    if row is not None:
        fields.update(
            user_id=row.user.pk,
            key_prefix=row.api_key.prefix if row.api_key is not None else None,
            model=row.model.public_id if row.model is not None else None,
            deployment=row.deployment.pk if row.deployment is not None else None,
            provider=row.deployment.provider.name if row.deployment is not None else None,
            attempts=row.attempts,
            input_tokens=row.prompt_tokens,
            output_tokens=row.completion_tokens,
            cached_tokens=exchange.usage.cached_tokens if exchange.usage is not None else 0,
            usage_estimated=row.usage_estimated,
            cost_usd=str(row.cost),
            ttft_ms=row.ttft_ms,
            stream=row.stream,
            error_code=row.error_code or None,
        )
    requests_log.info("request", extra=fields)
