"""Anthropic's Messages API wire format as pydantic models, beside OpenAI's in gateway.chat_completions.protocol.

Fields follow the order of Anthropic's spec (as its SDKs are generated from it: required fields
first, then the optional ones alphabetically). Anything marked "ours" is an extension or a
deliberate leniency.

Requests are validated here. Like OpenAI's, the models allow extra fields: Anthropic adds
parameters often (betas, server tools, containers, ...), and a request whose upstream speaks
Anthropic is forwarded as the client sent it, so what we do not model still reaches it. Block
types we do not model (server tools' results, search results, ...) are kept as `OtherBlock`.

The answer models (and the stream events in gateway.anthropic_messages.stream_protocol) are what a reply
from an Anthropic upstream is read with when it is translated for an OpenAI client
(gateway.translate_anthropic); answers we relay or build for Anthropic clients are plain dicts,
checked against these models by the tests.

Error messages name the param the way Anthropic's do, with dots and indexes:
`messages.0.content.1.source.media_type: ...`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, ValidationError

from gateway.chat_completions.protocol import OpenModel
from gateway.errors import GatewayError, output_cap_too_large


def _kind(value: Any) -> Any:
    return value.get("type") if isinstance(value, dict) else getattr(value, "type", None)


def tagged(known: frozenset[str]) -> Any:
    """A discriminator on `type` that sends any type not in `known` to the "other" member."""

    def pick(value: Any) -> str:
        kind = _kind(value)
        return kind if kind in known else "other"

    return Discriminator(pick)


class CacheControl(OpenModel):
    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None


# --- content blocks ---------------------------------------------------------------------------


class TextBlock(OpenModel):
    text: str
    type: Literal["text"]
    cache_control: CacheControl | None = None
    citations: list[dict[str, Any]] | None = None


class Base64ImageSource(OpenModel):
    data: str
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    type: Literal["base64"]


class Base64PdfSource(OpenModel):
    data: str
    media_type: Literal["application/pdf"]
    type: Literal["base64"]


class UrlSource(OpenModel):
    type: Literal["url"]
    url: str


class FileSource(OpenModel):
    """A file uploaded to Anthropic's Files API: only an Anthropic upstream knows it."""

    file_id: str
    type: Literal["file"]


class PlainTextSource(OpenModel):
    data: str
    media_type: Literal["text/plain"]
    type: Literal["text"]


ImageSource = Annotated[Base64ImageSource | UrlSource | FileSource, Field(discriminator="type")]


class ImageBlock(OpenModel):
    source: ImageSource
    type: Literal["image"]
    cache_control: CacheControl | None = None


class ContentSource(OpenModel):
    """A document given as content blocks (text and images), e.g. for citations of chosen passages."""

    content: str | list[Annotated[TextBlock | ImageBlock, Field(discriminator="type")]]
    type: Literal["content"]


DocumentSource = Annotated[
    Base64PdfSource | PlainTextSource | ContentSource | UrlSource | FileSource, Field(discriminator="type")
]


class DocumentBlock(OpenModel):
    source: DocumentSource
    type: Literal["document"]
    cache_control: CacheControl | None = None
    citations: dict[str, Any] | None = None
    context: str | None = None
    title: str | None = None


class ToolUseBlock(OpenModel):
    id: str
    input: dict[str, Any]
    name: str = Field(min_length=1)
    type: Literal["tool_use"]
    cache_control: CacheControl | None = None


class OtherBlock(OpenModel):
    """Ours: a block type we do not model (search results, server tools' blocks, ...), kept as sent."""

    type: str


ToolResultContent = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ImageBlock, Tag("image")]
    | Annotated[DocumentBlock, Tag("document")]
    | Annotated[OtherBlock, Tag("other")],
    tagged(frozenset(("text", "image", "document"))),
]


class ToolResultBlock(OpenModel):
    tool_use_id: str
    type: Literal["tool_result"]
    cache_control: CacheControl | None = None
    content: str | list[ToolResultContent] | None = None
    is_error: bool | None = None


class ThinkingBlock(OpenModel):
    signature: str
    thinking: str
    type: Literal["thinking"]


class RedactedThinkingBlock(OpenModel):
    data: str
    type: Literal["redacted_thinking"]


_BLOCK_TYPES = frozenset(
    ("text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"),
)
ContentBlock = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ImageBlock, Tag("image")]
    | Annotated[DocumentBlock, Tag("document")]
    | Annotated[ToolUseBlock, Tag("tool_use")]
    | Annotated[ToolResultBlock, Tag("tool_result")]
    | Annotated[ThinkingBlock, Tag("thinking")]
    | Annotated[RedactedThinkingBlock, Tag("redacted_thinking")]
    | Annotated[OtherBlock, Tag("other")],
    tagged(_BLOCK_TYPES),
]
Content = str | list[ContentBlock]


# --- messages ---------------------------------------------------------------------------------


class UserMessage(OpenModel):
    content: Content
    role: Literal["user"]


class AssistantMessage(OpenModel):
    content: Content
    role: Literal["assistant"]


class SystemMessage(OpenModel):
    """A system turn inside `messages` (newer than the top-level `system`, which most clients use)."""

    content: str | list[TextBlock]
    role: Literal["system"]


Message = Annotated[UserMessage | AssistantMessage | SystemMessage, Field(discriminator="role")]


# --- tools ------------------------------------------------------------------------------------


class CustomTool(OpenModel):
    """A tool the client runs: what OpenAI calls a function."""

    input_schema: dict[str, Any]
    name: str = Field(min_length=1, max_length=128)
    cache_control: CacheControl | None = None
    description: str | None = None
    type: Literal["custom"] | None = None


class ServerTool(OpenModel):
    """Ours: one of Anthropic's own tools (`web_search_20250305`, `bash_20250124`, ...), run by Anthropic."""

    name: str
    type: str


# Anthropic's server tools we run ourselves for models with a deployment not on Anthropic
# (gateway.anthropic_messages.server_tools); a model served only by Anthropic runs them itself.
RUN_BY_US = frozenset(("web_search_20250305", "web_fetch_20250910"))


def _tool_kind(value: Any) -> str:
    kind = _kind(value)
    return "custom" if kind in (None, "custom") else "server"


Tool = Annotated[
    Annotated[CustomTool, Tag("custom")] | Annotated[ServerTool, Tag("server")],
    Discriminator(_tool_kind),
]


class ToolChoiceAuto(OpenModel):
    type: Literal["auto"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceAny(OpenModel):
    type: Literal["any"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceTool(OpenModel):
    name: str
    type: Literal["tool"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceNone(OpenModel):
    type: Literal["none"]


ToolChoice = Annotated[ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone, Field(discriminator="type")]


# --- the request ------------------------------------------------------------------------------


class Metadata(OpenModel):
    user_id: str | None = Field(default=None, max_length=256)


class ThinkingEnabled(OpenModel):
    budget_tokens: int = Field(ge=1024)
    type: Literal["enabled"]


class ThinkingDisabled(OpenModel):
    type: Literal["disabled"]


class ThinkingAdaptive(OpenModel):
    type: Literal["adaptive"]


Thinking = Annotated[ThinkingEnabled | ThinkingDisabled | ThinkingAdaptive, Field(discriminator="type")]


class McpToolConfiguration(OpenModel):
    allowed_tools: list[str] | None = None
    enabled: bool | None = None


class McpServerDefinition(OpenModel):
    """RequestMCPServerURLDefinition (the MCP connector, beta `mcp-client-2025-04-04`)."""

    name: str = Field(min_length=1, max_length=64)
    type: Literal["url"]
    url: str = Field(min_length=1, max_length=500)
    authorization_token: str | None = None
    tool_configuration: McpToolConfiguration | None = None


class MessagesRequest(OpenModel):
    """MessageCreateParams."""

    def without_our_tools(self) -> MessagesRequest:
        """The request without the server tools and MCP servers we run: what the model's chat translation carries."""
        kept = [tool for tool in self.tools or () if not (isinstance(tool, ServerTool) and tool.type in RUN_BY_US)]
        return self.model_copy(update={"tools": kept or None, "mcp_servers": None})

    max_tokens: int = Field(ge=0)  # 0 pre-warms Anthropic's prompt cache without generating
    messages: list[Message] = Field(min_length=1)
    model: str = Field(min_length=1)
    mcp_servers: Annotated[list[McpServerDefinition], Field(max_length=20)] | None = None
    metadata: Metadata | None = None
    service_tier: str | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    system: str | list[TextBlock] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    thinking: Thinking | None = None
    tool_choice: ToolChoice | None = None
    tools: list[Tool] | None = None
    top_k: int | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, ge=0, le=1)

    def output_cap(self, model_limit: int) -> int:
        """The most tokens the answer may take: `max_tokens`, a 400 naming it above the model's limit."""
        if self.max_tokens > model_limit:
            raise output_cap_too_large("max_tokens", self.max_tokens, model_limit)
        return self.max_tokens

    def needs(self) -> list[tuple[str, str, str]]:
        """What this request asks of the model: (capability, the param asking it, in words) each."""
        needed: list[tuple[str, str, str]] = []
        if any(_has_image(message.content) for message in self.messages):
            needed.append(("vision", "messages", "images"))
        if self.tools:
            needed.append(("tools", "tools", "tools"))
        return needed


def _has_image(content: Any) -> bool:
    if not isinstance(content, list):
        return False
    return any(
        isinstance(block, ImageBlock) or (isinstance(block, ToolResultBlock) and _has_image(block.content))
        for block in content
    )


class CountTokensRequest(OpenModel):
    """MessageCountTokensParams."""

    messages: list[Message] = Field(min_length=1)
    model: str = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    thinking: Thinking | None = None
    tool_choice: ToolChoice | None = None
    tools: list[Tool] | None = None


# --- the answer -------------------------------------------------------------------------------

StopReason = Literal[
    "end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal", "model_context_window_exceeded"
]


class Usage(OpenModel):
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    input_tokens: int
    output_tokens: int


class MessageResponse(OpenModel):
    """Message: a non-streamed answer, and what `message_start` carries."""

    id: str
    content: list[ContentBlock]
    model: str
    role: Literal["assistant"]
    stop_reason: StopReason | str | None = None  # ours: a newer reason is kept, not refused
    stop_sequence: str | None = None
    type: Literal["message"]
    usage: Usage


# --- validation -------------------------------------------------------------------------------

# Error locations hold discriminator tags after a union field or its index; they name no param.
_TAGGED = frozenset(("messages", "content", "tools", "source", "tool_choice", "thinking", "delta", "content_block"))
_TYPE_NAMES = frozenset(("str", "int", "bool", "float", "list", "dict", "none"))


def param_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's error location as Anthropic names a param: `messages.0.content.1.source`."""
    parts: list[str] = []
    skip_tag = False
    for part in loc:
        if isinstance(part, int):
            parts.append(str(part))
            skip_tag = len(parts) > 1 and parts[-2] in _TAGGED
            continue
        if skip_tag:
            skip_tag = False
            continue
        # Union members ("str", "list[...]", "function-after[...]") show up in locations too.
        if part in _TYPE_NAMES or not part.isidentifier():
            continue
        parts.append(part)
        skip_tag = part in _TAGGED and part not in ("messages", "content", "tools")
    return ".".join(parts)


def _first_error(exc: ValidationError) -> Any:
    """The most specific error: with unions pydantic reports every member; the deepest one helps most."""
    return max(exc.errors(include_url=False), key=lambda error: len(error["loc"]))


def _invalid(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param, code="invalid_value")


def _parse(model: type[BaseModel], body: Any) -> Any:
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.")
    try:
        # Strict as Anthropic's API is: "16" is no integer, 1 and "true" are no boolean.
        return model.model_validate(body, strict=True)
    except ValidationError as exc:
        first = _first_error(exc)
        param = param_path(tuple(first["loc"]))
        if first["type"] == "union_tag_invalid":
            param += ".role" if param.startswith("messages") and param.count(".") == 1 else ".type"
        if first["type"] == "missing":
            raise _invalid(f"{param}: Field required", param) from None
        raise _invalid(f"{param}: {first['msg']}", param or None) from None


def _check_roles(body: dict[str, Any]) -> None:
    """OpenAI-minded clients put `system` as a message; say where Anthropic's system prompt goes.

    Only a list is walked: any other `messages` is the model's to refuse with its type error."""
    messages = body.get("messages")
    for position, message in enumerate(messages if isinstance(messages, list) else ()):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in (None, "user", "assistant", "system"):
            raise _invalid(
                f'messages.{position}.role: Unexpected role "{role}". The Messages API accepts a top-level '
                '`system` parameter, and the roles "user" and "assistant" in `messages`.',
                f"messages.{position}.role",
            )


def parse_messages_request(body: Any) -> MessagesRequest:
    """Validate a /v1/messages body; GatewayError 400 naming the first offending param."""
    if isinstance(body, dict):
        _check_roles(body)
    request: MessagesRequest = _parse(MessagesRequest, body)
    return request


def parse_count_tokens_request(body: Any) -> CountTokensRequest:
    """Validate a /v1/messages/count_tokens body; GatewayError 400 naming the first offending param."""
    if isinstance(body, dict):
        _check_roles(body)
    request: CountTokensRequest = _parse(CountTokensRequest, body)
    return request
