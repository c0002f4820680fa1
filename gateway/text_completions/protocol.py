"""OpenAI's (legacy) Completions request, CreateCompletionRequest, as a pydantic model.

The conventions of gateway.chat_completions.protocol: spec field order, unknown fields kept and forwarded (llama.cpp's
`min_p`, vLLM's `top_k`, ...), "ours" marks an extension or a leniency.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from gateway.chat_completions.protocol import INT64, StreamOptions, invalid_param, only_when_streaming, parse_body
from gateway.errors import GatewayError

TokenList = Annotated[list[StrictInt], Field(min_length=1)]
Prompt = str | list[str] | TokenList | Annotated[list[TokenList], Field(min_length=1)]


class CreateCompletionRequest(BaseModel):
    """CreateCompletionRequest."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    prompt: Prompt | None
    best_of: int | None = Field(default=None, ge=0, le=20)
    echo: bool | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, int] | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)
    max_tokens: int | None = Field(default=None, ge=0)
    n: int | None = Field(default=None, ge=1, le=128)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = Field(default=None, ge=-INT64, lt=INT64)
    stop: str | Annotated[list[str], Field(min_length=1, max_length=4)] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    suffix: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    user: str | None = None

    def wants_usage_chunk(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    def prompts(self) -> list[Any]:
        """One entry per prompt the request holds (a list of strings or of token lists is several)."""
        prompt = self.prompt
        if not prompt or isinstance(prompt, str):
            return [prompt or ""]
        if isinstance(prompt[0], int):
            return [prompt]
        return list(prompt)

    def choices(self) -> int:
        """Choices answered: `n` for each prompt."""
        return (self.n or 1) * len(self.prompts())

    def output_cap(self, model_limit: int) -> int:
        """`max_tokens`, else the model's limit (ours: OpenAI's default is 16; an unbounded upstream is worse)."""
        if self.max_tokens is None:
            return model_limit
        if self.max_tokens > model_limit:
            raise GatewayError(
                400,
                f"max_tokens is too large: {self.max_tokens}. This model supports at most {model_limit} "
                f"completion tokens, whereas you provided {self.max_tokens}.",
                param="max_tokens",
                code="invalid_value",
            )
        return self.max_tokens


def parse_completion_request(body: Any) -> CreateCompletionRequest:
    """Validate a CreateCompletionRequest body; GatewayError 400 naming the first offending param."""
    request = parse_body(CreateCompletionRequest, body)
    only_when_streaming(request.stream, request.stream_options)
    if request.prompt == []:
        raise invalid_param("prompt", "give at least one prompt")
    if request.best_of is not None and request.best_of < (request.n or 1):
        raise invalid_param("best_of", "must be greater than or equal to 'n'")
    if request.stream and request.best_of is not None and request.best_of > 1:
        raise invalid_param("best_of", "cannot be greater than 1 when streaming")
    return request
