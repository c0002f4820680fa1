"""OpenAI's chat-completions wire format as pydantic models (tests/data/openai-openapi.yaml).

Fields follow the spec's order (CreateChatCompletionRequest is `allOf` ModelResponseProperties,
then the chat properties). Anything marked "ours" is an extension or a deliberate leniency.

Requests are validated here and then forwarded as the client sent them (see gateway.chat_completions.serving):
the models allow extra fields so that provider-specific parameters (`top_k`, `min_p`,
`repetition_penalty`, ...) reach the upstream untouched. Answers are relayed from the upstream
with a few fields rewritten, not re-validated (too slow per streamed chunk); the tests validate
them against OpenAI's schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)

from gateway.errors import GatewayError, output_cap_too_large
from gateway.strict import invalid_type


class OpenModel(BaseModel):
    """A wire-format model that keeps unknown fields (passed upstream untouched)."""

    model_config = ConfigDict(extra="allow")


# --- content parts ----------------------------------------------------------------------------


class TextPart(OpenModel):
    type: Literal["text"]
    text: str


class ImageUrl(OpenModel):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(OpenModel):
    type: Literal["image_url"]
    image_url: ImageUrl


class InputAudio(OpenModel):
    data: str
    format: str


class AudioPart(OpenModel):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FilePart(OpenModel):
    type: Literal["file"]
    file: dict[str, Any]


class RefusalPart(OpenModel):
    type: Literal["refusal"]
    refusal: str


class OtherPart(OpenModel):
    """Ours: a part type the spec doesn't list (e.g. vLLM's `video_url`), left to the upstream."""

    type: str


def _part_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in ("text", "image_url", "input_audio", "file", "refusal") else "other"


ContentPart = Annotated[
    Annotated[TextPart, Tag("text")]
    | Annotated[ImagePart, Tag("image_url")]
    | Annotated[AudioPart, Tag("input_audio")]
    | Annotated[FilePart, Tag("file")]
    | Annotated[RefusalPart, Tag("refusal")]
    | Annotated[OtherPart, Tag("other")],
    Discriminator(_part_kind),
]
Content = str | Annotated[list[ContentPart], Field(min_length=1)]


# --- messages ---------------------------------------------------------------------------------


class FunctionCall(OpenModel):
    name: str
    arguments: str


class ToolCallFunction(OpenModel):
    name: str
    arguments: str


class MessageToolCall(OpenModel):
    id: str
    type: Literal["function", "custom"] = "function"
    function: ToolCallFunction | None = None
    custom: dict[str, Any] | None = None


class DeveloperMessage(OpenModel):
    content: Content
    role: Literal["developer"]
    name: str | None = None


class SystemMessage(OpenModel):
    content: Content
    role: Literal["system"]
    name: str | None = None


class UserMessage(OpenModel):
    content: Content
    role: Literal["user"]
    name: str | None = None


class AssistantMessage(OpenModel):
    content: Content | None = None
    refusal: str | None = None
    role: Literal["assistant"]
    name: str | None = None
    audio: dict[str, Any] | None = None
    tool_calls: list[MessageToolCall] | None = None
    function_call: FunctionCall | None = None


class ToolMessage(OpenModel):
    role: Literal["tool"]
    content: Content
    tool_call_id: str


class FunctionMessage(OpenModel):
    role: Literal["function"]
    content: str | None
    name: str


Message = Annotated[
    DeveloperMessage | SystemMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage,
    Field(discriminator="role"),
]


# --- tools and formats ------------------------------------------------------------------------


class FunctionObject(OpenModel):
    description: str | None = None
    name: str = Field(min_length=1, max_length=64)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(OpenModel):
    type: Literal["function"]
    function: FunctionObject


class CustomTool(OpenModel):
    type: Literal["custom"]
    custom: dict[str, Any]


Tool = Annotated[FunctionTool | CustomTool, Field(discriminator="type")]


class NamedToolChoice(OpenModel):
    type: Literal["function", "custom", "allowed_tools"]


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class ResponseFormatText(OpenModel):
    type: Literal["text"]


class ResponseFormatJsonObject(OpenModel):
    type: Literal["json_object"]


class JsonSchema(OpenModel):
    description: str | None = None
    name: str = Field(min_length=1, max_length=64)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatJsonSchema(OpenModel):
    type: Literal["json_schema"]
    json_schema: JsonSchema


ResponseFormat = Annotated[
    ResponseFormatText | ResponseFormatJsonObject | ResponseFormatJsonSchema, Field(discriminator="type")
]


class StreamOptions(OpenModel):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class PredictionContent(OpenModel):
    type: Literal["content"]
    content: str | Annotated[list[TextPart], Field(min_length=1)]


def _check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    """Metadata: at most 16 pairs, keys up to 64 characters, values up to 512 (the spec's description)."""
    if value is None:
        return None
    if len(value) > 16:
        raise ValueError("at most 16 key-value pairs")
    for key, item in value.items():
        if len(key) > 64:
            raise ValueError(f"the key '{key[:64]}...' is longer than 64 characters")
        if len(item) > 512:
            raise ValueError(f"the value of '{key}' is longer than 512 characters")
    return value


Metadata = Annotated[dict[str, str] | None, AfterValidator(_check_metadata)]
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
ServiceTier = Literal["auto", "default", "flex", "scale", "priority", "fast"]
Verbosity = Literal["low", "medium", "high"]
INT64 = 2**63


# --- the request ------------------------------------------------------------------------------


class ModelResponseProperties(OpenModel):
    """ModelResponseProperties: the fields chat completions and responses share, as the spec composes them."""

    metadata: Metadata = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    user: str | None = None
    safety_identifier: str | None = Field(default=None, max_length=64)
    prompt_cache_key: str | None = None


class ChatCompletionRequest(ModelResponseProperties):
    """CreateChatCompletionRequest."""

    # the chat properties
    messages: list[Message] = Field(min_length=1)
    model: str = Field(min_length=1)
    service_tier: ServiceTier | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    verbosity: Verbosity | None = None
    reasoning_effort: ReasoningEffort | None = None
    max_completion_tokens: int | None = Field(default=None, ge=1)  # ours: ge=1 (the spec sets no minimum)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    web_search_options: dict[str, Any] | None = None
    response_format: ResponseFormat | None = None
    audio: dict[str, Any] | None = None
    store: bool | None = None
    stream: bool | None = None
    stop: str | Annotated[list[str], Field(min_length=1, max_length=4)] | None = None
    logit_bias: dict[str, Annotated[int, Field(ge=-100, le=100)]] | None = None
    logprobs: bool | None = None
    max_tokens: int | None = Field(default=None, ge=1)  # ours: ge=1
    n: int | None = Field(default=None, ge=1, le=128)
    prediction: PredictionContent | None = None
    seed: int | None = Field(default=None, ge=-INT64, lt=INT64)
    stream_options: StreamOptions | None = None
    # Ours: `false` (as some providers document) means "no tools"; services drops it upstream. `true`:
    # the server's own tools this key may use, run by us (gateway.chat_completions.tool_loop).
    tools: list[Tool] | bool | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    function_call: Literal["none", "auto"] | dict[str, Any] | None = None
    functions: Annotated[list[FunctionObject], Field(min_length=1, max_length=128)] | None = None
    # Ours: the MCP servers (by name) whose tools we run for the model.
    mcp_servers: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=32)] | None = None

    def wants_usage_chunk(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    def output_cap(self, model_limit: int) -> int:
        """The most completion tokens one choice may produce: what the request asks, else the model's limit.

        The one definition of the output cap: validation, the limits' reservation and the upstream
        request all read it. GatewayError 400 naming the parameter when the request asks for more.
        """
        for param in ("max_completion_tokens", "max_tokens"):
            value = getattr(self, param)
            if value is None:
                continue
            if value > model_limit:
                raise output_cap_too_large(param, value, model_limit)
            return int(value)
        return model_limit

    def choices(self) -> int:
        return self.n or 1

    def needs(self) -> list[tuple[str, str, str]]:
        """What this request asks of the model: (capability, the param asking it, in words) each."""
        needed: list[tuple[str, str, str]] = []
        for message in self.messages:
            content = getattr(message, "content", None)
            if isinstance(content, list) and any(isinstance(part, ImagePart) for part in content):
                needed.append(("vision", "messages", "images"))
                break
        if self.tools or self.functions:
            needed.append(("tools", "tools" if self.tools else "functions", "tools"))
        if self.response_format is not None and self.response_format.type != "text":
            needed.append(("json_output", "response_format", f"response_format {self.response_format.type}"))
        return needed


# --- validation -------------------------------------------------------------------------------


# Fields holding discriminated unions: in pydantic's error locations the tag follows the field
# (or its list index); it is no param name, so it is left out.
_TAGGED_LISTS = frozenset(("messages", "content", "tools", "input"))
_TAGGED_FIELDS = frozenset(("response_format", "format"))
_TYPE_NAMES = frozenset(("str", "int", "bool", "float", "list", "dict", "none"))

M = TypeVar("M", bound=BaseModel)


def _param_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's error location as OpenAI names a param: `messages[0].content`."""
    path = ""
    last_field = ""
    skip_tag = False
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            skip_tag = last_field in _TAGGED_LISTS
            continue
        if skip_tag:
            skip_tag = False
            continue
        if part.startswith("tagged-union["):
            skip_tag = True  # the member's tag comes next
            continue
        # Union members ("str", "list[...]", "NamedToolChoice") show up in locations too.
        if part in _TYPE_NAMES or not part.isidentifier() or part[0].isupper():
            continue
        path += f".{part}" if path else part
        last_field = part
        skip_tag = part in _TAGGED_FIELDS
    return path


# "Not an object": what a union's object members say about a string; another member says more.
_WRONG_SHAPE = frozenset(("model_type", "dict_type", "model_attributes_type"))


def _first_error(exc: ValidationError) -> Any:
    """The most specific error: with unions pydantic reports every member; the deepest one helps most."""
    errors = exc.errors(include_url=False)
    telling = [error for error in errors if error["type"] not in _WRONG_SHAPE] or errors
    # Among equally deep errors, a broken constraint ("too short") says more than a wrong type.
    return max(telling, key=lambda error: (len(error["loc"]), not str(error["type"]).endswith("_type")))


def invalid_param(param: str, detail: str) -> GatewayError:
    return GatewayError(400, f"Invalid value for '{param}': {detail}.", param=param, code="invalid_value")


def parse_body(model: type[M], body: Any) -> M:
    """Validate a request body as `model`, strictly as the spec's types read (no "16" for 16, no 1 for
    true; an integer is a number, as in JSON); GatewayError 400 naming the first offending param."""
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object.")
    try:
        return model.model_validate(body, strict=True)
    except ValidationError as exc:
        first, error = _first_error(exc), exc
    param = _param_path(tuple(first["loc"])) or None
    if first["type"] == "union_tag_invalid" and param:
        param += ".role" if param.startswith("messages") and param.endswith("]") else ".type"
    if first["type"] == "missing":
        raise GatewayError(400, f"Missing required parameter: '{param}'.", param=param, code="invalid_value")
    wrong_type = invalid_type(error, first, param, lambda loc: _param_path(tuple(loc)) or None)
    if wrong_type is not None:
        raise wrong_type
    detail = str(first["msg"]).removeprefix("Value error, ")
    raise GatewayError(400, f"Invalid value for '{param}': {detail}.", param=param, code="invalid_value")


def only_when_streaming(stream: bool | None, stream_options: Any) -> None:
    if stream_options is not None and not stream:
        raise GatewayError(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="invalid_value",
        )


def parse_chat_request(body: Any) -> ChatCompletionRequest:
    """Validate a request body; GatewayError 400 naming the first offending param."""
    request = parse_body(ChatCompletionRequest, body)
    only_when_streaming(request.stream, request.stream_options)
    if request.top_logprobs is not None and not request.logprobs:
        raise invalid_param("top_logprobs", "'logprobs' must be true when 'top_logprobs' is set")
    return request


def reasoning_text(message: dict[str, Any]) -> str:
    """The reasoning an upstream sent, under either name that upstreams use."""
    for name in ("reasoning_content", "reasoning"):
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return ""
