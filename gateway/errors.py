"""Errors in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

from typing import Any

CLIENT_CLOSED = 499  # nginx's "client closed request", for streams the consumer abandoned


class UpstreamFault:
    """How routing should treat an upstream's failure (gateway.routing reads it; clients never see it).

    `retryable`: another attempt (another deployment, or the same after a backoff) may succeed.
    `down`: the deployment looks unreachable (connection refused, DNS): cool it down at once.
    `retry_after`: seconds the upstream asked us to stay away.
    """

    __slots__ = ("down", "retry_after", "retryable")

    def __init__(self, *, retryable: bool, down: bool = False, retry_after: float | None = None) -> None:
        self.retryable = retryable
        self.down = down
        self.retry_after = retry_after


class GatewayError(Exception):
    """Raised by the gateway; gateway.wire answers it to /v1 clients, the chat shows its message."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # the wire name
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        fault: UpstreamFault | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.fault = fault  # set on failures of an upstream: see UpstreamFault

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def error_code_of(exc: GatewayError) -> str:
    """What the ledger records of an error: its code, else its type."""
    return exc.code or exc.type


def output_cap_too_large(param: str, value: int, model_limit: int) -> GatewayError:
    """A request asking for more completion tokens than the model gives (the one wording, every protocol)."""
    return GatewayError(
        400,
        f"{param} is too large: {value}. This model supports at most {model_limit} "
        f"completion tokens, whereas you provided {value}.",
        param=param,
        code="invalid_value",
    )


class UnreadableAnswer(ValueError):
    """An upstream answer or stream event that is none of its protocol's shapes (the caller answers 502)."""
