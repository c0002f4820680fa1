"""OpenAI's Responses API request (CreateResponse) as pydantic models (tests/data/openai-openapi.yaml).

The same conventions as gateway.chat_completions.protocol: spec field order (CreateResponse is `allOf`
CreateModelResponseProperties, ResponseProperties, then its own properties), unknown fields kept
(passed to upstreams that speak Responses, and to chat upstreams after translation), anything
marked "ours" is an extension or a deliberate leniency. Item and tool types the spec has but no
chat upstream can serve (computer use, code interpreter, ...) are kept as "other": valid here, passed
through to Responses-native upstreams, refused by the translation. `namespace` tools (groups of
functions) are modelled: the translation flattens them; so are the hosted tools we run ourselves
(`web_search`, `web_search_preview`, `mcp`, `file_search`).

Answers (Response objects, stream events) are built by gateway.translate_responses or relayed
from the upstream; the tests validate them against the schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from gateway.chat_completions.protocol import (
    ModelResponseProperties,
    OpenModel,
    ReasoningEffort,
    Verbosity,
    invalid_param,
    only_when_streaming,
    parse_body,
)
from gateway.errors import GatewayError


def _kind(value: Any, known: frozenset[str], default: str | None = None) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind is None and default is not None:
        return default
    return kind if kind in known else "other"


class OtherType(OpenModel):
    """Ours: a type the translation does not handle, left to Responses-native upstreams."""

    type: str


# --- content parts ----------------------------------------------------------------------------


class InputText(OpenModel):
    type: Literal["input_text"]
    text: str


class InputImage(OpenModel):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["low", "high", "auto", "original"] | None = None

    @model_validator(mode="after")
    def _has_a_source(self) -> InputImage:
        if self.image_url is None and self.file_id is None:
            raise ValueError("an input_image needs an image_url or a file_id")
        return self


class InputFile(OpenModel):
    type: Literal["input_file"]
    file_id: str | None = None
    filename: str | None = None
    file_data: str | None = None
    file_url: str | None = None


class OutputText(OpenModel):
    """An assistant message's text, as earlier turns are sent back."""

    type: Literal["output_text"]
    text: str
    annotations: list[Any] | None = None
    logprobs: list[Any] | None = None


class Refusal(OpenModel):
    type: Literal["refusal"]
    refusal: str


_PART_TYPES = frozenset(("input_text", "input_image", "input_file", "output_text", "refusal"))

Part = Annotated[
    Annotated[InputText, Tag("input_text")]
    | Annotated[InputImage, Tag("input_image")]
    | Annotated[InputFile, Tag("input_file")]
    | Annotated[OutputText, Tag("output_text")]
    | Annotated[Refusal, Tag("refusal")]
    | Annotated[OtherType, Tag("other")],
    Discriminator(lambda value: _kind(value, _PART_TYPES)),
]


# --- input items ------------------------------------------------------------------------------


class MessageItem(OpenModel):
    """EasyInputMessage, InputMessage or an earlier OutputMessage: `type` may be left out."""

    type: Literal["message"] | None = None
    id: str | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[Part]
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class FunctionCallItem(OpenModel):
    type: Literal["function_call"]
    id: str | None = None
    call_id: str
    namespace: str | None = None  # the namespace tool the function belongs to
    name: str
    arguments: str
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class FunctionCallOutputItem(OpenModel):
    type: Literal["function_call_output"]
    id: str | None = None
    call_id: str = Field(min_length=1, max_length=64)
    output: str | list[Part]
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class ReasoningItem(OpenModel):
    type: Literal["reasoning"]
    id: str | None = None  # ours: optional (clients replaying a stateless turn may drop it)
    summary: list[dict[str, Any]] = Field(default_factory=list)
    content: list[dict[str, Any]] | None = None
    encrypted_content: str | None = None


class ItemReference(OpenModel):
    type: Literal["item_reference"] | None = None
    id: str


class McpApprovalRequestItem(OpenModel):
    type: Literal["mcp_approval_request"]
    id: str = Field(min_length=1)
    server_label: str
    name: str
    arguments: str


class McpApprovalResponseItem(OpenModel):
    type: Literal["mcp_approval_response"]
    id: str | None = None
    approval_request_id: str = Field(min_length=1)
    approve: bool
    reason: str | None = None


class McpCallItem(OpenModel):
    type: Literal["mcp_call"]
    id: str = Field(min_length=1)
    server_label: str
    name: str
    arguments: str
    output: str | None = None
    error: Any = None
    status: Literal["in_progress", "completed", "incomplete", "calling", "failed"] | None = None
    approval_request_id: str | None = None


_ITEM_TYPES = frozenset(
    (
        "message",
        "function_call",
        "function_call_output",
        "reasoning",
        "item_reference",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_call",
    )
)


def _item_kind(value: Any) -> str:
    if isinstance(value, dict) and "type" not in value and "role" not in value and "id" in value:
        return "item_reference"
    return _kind(value, _ITEM_TYPES, default="message")


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[ItemReference, Tag("item_reference")]
    | Annotated[McpApprovalRequestItem, Tag("mcp_approval_request")]
    | Annotated[McpApprovalResponseItem, Tag("mcp_approval_response")]
    | Annotated[McpCallItem, Tag("mcp_call")]
    | Annotated[OtherType, Tag("other")],
    Discriminator(_item_kind),
]


# --- tools, tool choice, text format, reasoning -----------------------------------------------


class FunctionTool(OpenModel):
    """Responses' function tool: flat, unlike chat's `{"type": "function", "function": {...}}`."""

    type: Literal["function"]
    name: str = Field(min_length=1, max_length=64)  # ours: chat's limits, which translation needs
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


NamespacedTool = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[OtherType, Tag("other")],
    Discriminator(lambda value: _kind(value, frozenset(("function",)))),
]


class NamespaceTool(OpenModel):
    """NamespaceToolParam: function (or custom) tools grouped under a name the model's calls carry."""

    type: Literal["namespace"]
    name: str = Field(min_length=1)
    description: str
    tools: list[NamespacedTool] = Field(min_length=1)


class WebSearchFilters(OpenModel):
    allowed_domains: list[str] | None = None


class WebSearchTool(OpenModel):
    """WebSearchTool and WebSearchPreviewTool: run by us when the upstream cannot."""

    type: Literal["web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"]
    external_web_access: bool | None = None
    filters: WebSearchFilters | None = None
    user_location: dict[str, Any] | None = None
    search_context_size: Literal["low", "medium", "high"] | None = None
    search_content_types: list[str] | None = None


class McpToolFilter(OpenModel):
    tool_names: list[str] | None = None
    read_only: bool | None = None


class McpApprovalFilter(OpenModel):
    always: McpToolFilter | None = None
    never: McpToolFilter | None = None


class McpTool(OpenModel):
    """MCPTool: a remote MCP server's tools, listed and called by us."""

    type: Literal["mcp"]
    server_label: str = Field(min_length=1)
    server_url: str | None = None
    connector_id: str | None = None
    authorization: str | None = None
    server_description: str | None = None
    headers: dict[str, str] | None = None
    allowed_tools: list[str] | McpToolFilter | None = None
    require_approval: Literal["always", "never"] | McpApprovalFilter | None = None


class HybridSearchOptions(OpenModel):
    embedding_weight: float
    text_weight: float


class RankingOptions(OpenModel):
    ranker: Literal["none", "auto", "default-2024-11-15"] | None = None
    score_threshold: float | None = Field(default=None, ge=0, le=1)
    hybrid_search: HybridSearchOptions | None = None


class FileSearchTool(OpenModel):
    """FileSearchTool: the caller's vector stores (ours, in our PostgreSQL) searched by us for any model."""

    type: Literal["file_search"]
    vector_store_ids: list[str] = Field(min_length=1, max_length=16)  # ours: at least one, as many as a search takes
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    ranking_options: RankingOptions | None = None
    filters: dict[str, Any] | None = None  # ComparisonFilter or CompoundFilter: knowledge.filters checks its shape


HOSTED_TOOL_TYPES = frozenset(
    (
        "web_search",
        "web_search_2025_08_26",
        "web_search_preview",
        "web_search_preview_2025_03_11",
        "mcp",
        "file_search",
    )
)
_TOOL_TYPES = frozenset(("function", "namespace")) | HOSTED_TOOL_TYPES


def _tool_kind(value: Any) -> str:
    kind = _kind(value, _TOOL_TYPES)
    return "web_search" if kind.startswith("web_search") else kind


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")]
    | Annotated[NamespaceTool, Tag("namespace")]
    | Annotated[WebSearchTool, Tag("web_search")]
    | Annotated[McpTool, Tag("mcp")]
    | Annotated[FileSearchTool, Tag("file_search")]
    | Annotated[OtherType, Tag("other")],
    Discriminator(_tool_kind),
]


class ToolChoiceFunction(OpenModel):
    type: Literal["function"]
    name: str


class ToolChoiceAllowed(OpenModel):
    type: Literal["allowed_tools"]
    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]]


ToolChoiceObject = Annotated[
    Annotated[ToolChoiceFunction, Tag("function")]
    | Annotated[ToolChoiceAllowed, Tag("allowed_tools")]
    | Annotated[OtherType, Tag("other")],
    Discriminator(lambda value: _kind(value, frozenset(("function", "allowed_tools")))),
]
ToolChoice = Literal["none", "auto", "required"] | ToolChoiceObject


class FormatText(OpenModel):
    type: Literal["text"]


class FormatJsonObject(OpenModel):
    type: Literal["json_object"]


class FormatJsonSchema(OpenModel):
    type: Literal["json_schema"]
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


TextFormat = Annotated[FormatText | FormatJsonObject | FormatJsonSchema, Field(discriminator="type")]


class TextParam(OpenModel):
    format: TextFormat | None = None
    verbosity: Verbosity | None = None


class Reasoning(OpenModel):
    mode: str | None = None
    effort: ReasoningEffort | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    context: Literal["auto", "current_turn", "all_turns"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


Include = Literal[
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
]


class ResponseStreamOptions(OpenModel):
    include_obfuscation: bool | None = None


# --- the request ------------------------------------------------------------------------------


class CreateResponse(ModelResponseProperties):
    """CreateResponse."""

    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    # CreateModelResponseProperties
    prompt_cache_options: dict[str, Any] | None = None
    # ResponseProperties
    previous_response_id: str | None = None
    model: str = Field(min_length=1)  # ours: required, there is no default model to fall back on
    background: bool | None = None
    max_tool_calls: int | None = None
    text: TextParam | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    prompt: dict[str, Any] | None = None
    # CreateResponse's own
    service_tier: Literal["auto", "default", "flex", "scale", "priority", "fast", "ultrafast"] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    reasoning: Reasoning | None = None
    input: str | list[InputItem]  # ours: required (stored prompts and conversations are not served)
    include: list[Include] | None = None
    parallel_tool_calls: bool | None = None
    store: bool | None = None
    instructions: str | None = None
    moderation: dict[str, Any] | None = None
    stream: bool | None = None
    stream_options: ResponseStreamOptions | None = None
    conversation: str | dict[str, Any] | None = None
    context_management: Annotated[list[dict[str, Any]], Field(min_length=1)] | None = None
    max_output_tokens: int | None = Field(default=None, ge=16)
    client_metadata: dict[str, str] | None = None  # ours: Codex CLI's turn metadata, kept with the request

    def stores(self) -> bool:
        """`store` defaults to true, as OpenAI's does."""
        return self.store is not False

    def input_items(self) -> list[dict[str, Any]]:
        """The input as a list of items (a string is one user message), as the client sent them."""
        if isinstance(self.input, str):
            return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": self.input}]}]
        return [item.model_dump(mode="json", by_alias=True, exclude_unset=True) for item in self.input]

    def output_cap(self, model_limit: int) -> int:
        """`max_output_tokens`, else the model's limit; 400 when it asks for more than the model gives."""
        if self.max_output_tokens is None:
            return model_limit
        if self.max_output_tokens > model_limit:
            raise GatewayError(
                400,
                f"max_output_tokens is too large: {self.max_output_tokens}. This model supports at most "
                f"{model_limit} output tokens, whereas you provided {self.max_output_tokens}.",
                param="max_output_tokens",
                code="invalid_value",
            )
        return self.max_output_tokens


# Parameters of the spec that need server-side state this gateway does not keep.
_NOT_SERVED = {
    "background": "background responses are not supported; send the request without 'background'",
    "conversation": "conversations are not supported; continue with 'previous_response_id'",
}


def parse_response_request(body: Any) -> CreateResponse:
    """Validate a CreateResponse body; GatewayError 400 naming the first offending param."""
    request = parse_body(CreateResponse, body)
    only_when_streaming(request.stream, request.stream_options)
    for param, detail in _NOT_SERVED.items():
        if getattr(request, param):
            raise invalid_param(param, detail)
    return request
