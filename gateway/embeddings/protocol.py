"""OpenAI's embeddings request, CreateEmbeddingRequest, as a pydantic model.

The conventions of gateway.chat_completions.protocol. The spec forbids fields it does not list; ours keeps them and
forwards them, as embedding servers take their own (`input_type`, `truncate`, ...).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from gateway.chat_completions.protocol import parse_body

MAX_INPUTS = 2048
TokenList = Annotated[list[StrictInt], Field(min_length=1)]
EmbeddingInput = (
    str
    | Annotated[list[str], Field(min_length=1, max_length=MAX_INPUTS)]
    | Annotated[list[StrictInt], Field(min_length=1, max_length=MAX_INPUTS)]
    | Annotated[list[TokenList], Field(min_length=1, max_length=MAX_INPUTS)]
)


class CreateEmbeddingRequest(BaseModel):
    """CreateEmbeddingRequest."""

    model_config = ConfigDict(extra="allow")  # ours: see the module's docstring

    input: EmbeddingInput
    model: str = Field(min_length=1)
    encoding_format: Literal["float", "base64"] | None = None  # the spec's default: float
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    def inputs(self) -> list[str | list[int]]:
        """One entry per embedding the request asks for."""
        value = self.input
        if isinstance(value, str):
            return [value]
        if value and isinstance(value[0], int):
            return [list(value)]
        return list(value)  # type: ignore[arg-type]


def parse_embedding_request(body: Any) -> CreateEmbeddingRequest:
    """Validate a CreateEmbeddingRequest body; GatewayError 400 naming the first offending param."""
    return parse_body(CreateEmbeddingRequest, body)
