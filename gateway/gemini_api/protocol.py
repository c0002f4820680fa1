"""Google's Gemini API (generativelanguage v1beta) wire format as pydantic models.

Fields follow the order of Google's reference (GenerateContentRequest, Content, Part, GenerationConfig,
...), named in Python's snake case and read and written in the API's camel case (`maxOutputTokens`);
the snake-case names are accepted too, as Google's JSON parser accepts them. Anything marked "ours"
is an extension.

Like the other protocols' models these keep unknown fields: a request whose upstream speaks Gemini
is forwarded as the client sent it, so what we do not model (safety settings, cached content,
speech config, ...) still reaches Google. Answers we relay or build are plain dicts, checked against
the answer models here by the tests.

Error messages name the param the way Google's do: `contents[0].parts[1].inlineData.mimeType`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from gateway.errors import GatewayError, output_cap_too_large
from gateway.strict import invalid_type


class GeminiModel(BaseModel):
    """A Gemini wire object: camel case on the wire, snake case accepted, unknown fields kept."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True)


# --- content ------------------------------------------------------------------------------------


class Blob(GeminiModel):
    mime_type: str
    data: str  # base64


class FileData(GeminiModel):
    mime_type: str | None = None
    file_uri: str


class FunctionCall(GeminiModel):
    id: str | None = None
    name: str = Field(min_length=1)
    args: dict[str, Any] | None = None


class FunctionResponse(GeminiModel):
    id: str | None = None
    name: str = Field(min_length=1)
    response: dict[str, Any]
    will_continue: bool | None = None
    scheduling: str | None = None


class Part(GeminiModel):
    """One part: exactly one of its data fields, plus the thought flags."""

    thought: bool | None = None
    thought_signature: str | None = None  # base64
    part_metadata: dict[str, Any] | None = None
    text: str | None = None
    inline_data: Blob | None = None
    function_call: FunctionCall | None = None
    function_response: FunctionResponse | None = None
    file_data: FileData | None = None
    executable_code: dict[str, Any] | None = None
    code_execution_result: dict[str, Any] | None = None
    video_metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_datum(self) -> Part:
        present = [name for name in DATA_FIELDS if getattr(self, name) is not None]
        if len(present) > 1:
            raise ValueError(f"a part holds one of {', '.join(map(to_camel, DATA_FIELDS))}, not several")
        if not present and not self.thought_signature:
            raise ValueError(f"a part needs one of {', '.join(map(to_camel, DATA_FIELDS))}")
        return self


DATA_FIELDS = (
    "text",
    "inline_data",
    "function_call",
    "function_response",
    "file_data",
    "executable_code",
    "code_execution_result",
)


class Content(GeminiModel):
    parts: list[Part] = Field(default_factory=list)
    role: Literal["user", "model", "function"] | None = None


# --- tools --------------------------------------------------------------------------------------


class FunctionDeclaration(GeminiModel):
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    behavior: str | None = None
    parameters: dict[str, Any] | None = None
    parameters_json_schema: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    response_json_schema: dict[str, Any] | None = None


class Tool(GeminiModel):
    function_declarations: list[FunctionDeclaration] | None = None


class FunctionCallingConfig(GeminiModel):
    mode: Literal["MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"] | None = None
    allowed_function_names: list[str] | None = None


class ToolConfig(GeminiModel):
    function_calling_config: FunctionCallingConfig | None = None


# --- generation config --------------------------------------------------------------------------


class ThinkingConfig(GeminiModel):
    include_thoughts: bool | None = None
    thinking_budget: int | None = None
    thinking_level: Literal["THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH"] | None = None


class GenerationConfig(GeminiModel):
    stop_sequences: list[str] | None = Field(default=None, max_length=5)
    response_mime_type: str | None = None
    response_schema: dict[str, Any] | None = None
    response_json_schema: dict[str, Any] | None = None
    response_modalities: list[str] | None = None
    candidate_count: int | None = Field(default=None, ge=1, le=8)
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_logprobs: bool | None = None
    logprobs: int | None = None
    thinking_config: ThinkingConfig | None = None


# --- requests -----------------------------------------------------------------------------------


class GenerateContentRequest(GeminiModel):
    model: str = Field(min_length=1)  # ours: from the path, `models/{model}:generateContent`
    contents: list[Content] = Field(min_length=1)
    tools: list[Tool] | None = None
    tool_config: ToolConfig | None = None
    safety_settings: list[dict[str, Any]] | None = None
    system_instruction: Content | None = None
    generation_config: GenerationConfig | None = None
    cached_content: str | None = None

    def output_cap(self, model_limit: int) -> int:
        """The most tokens one candidate may take: `maxOutputTokens`, else the model's limit; a 400 above it."""
        asked = self.generation_config.max_output_tokens if self.generation_config else None
        if asked is None:
            return model_limit
        if asked > model_limit:
            raise output_cap_too_large("generationConfig.maxOutputTokens", asked, model_limit)
        return asked

    def candidates(self) -> int:
        count = self.generation_config.candidate_count if self.generation_config else None
        return count or 1

    def needs(self) -> list[tuple[str, str, str]]:
        """What this request asks of the model: (capability, the field asking it, in words) each."""
        needed: list[tuple[str, str, str]] = []
        if any(_image(part) for content in self.contents for part in content.parts):
            needed.append(("vision", "contents", "images"))
        if any(tool.function_declarations for tool in self.tools or ()):
            needed.append(("tools", "tools", "tools"))
        config = self.generation_config
        if config is not None and config.response_mime_type == "application/json":
            needed.append(("json_output", "generationConfig.responseMimeType", "JSON output"))
        return needed


def _image(part: Part) -> bool:
    data = part.inline_data or part.file_data
    return data is not None and (data.mime_type or "").startswith("image/")


class CountTokensRequest(GeminiModel):
    model: str = Field(min_length=1)  # ours: from the path
    contents: list[Content] | None = None
    generate_content_request: dict[str, Any] | None = None


# --- answers (what the tests check our answers against) -----------------------------------------


class UsageMetadata(GeminiModel):
    prompt_token_count: int = 0
    cached_content_token_count: int | None = None
    candidates_token_count: int | None = None
    tool_use_prompt_token_count: int | None = None
    thoughts_token_count: int | None = None
    total_token_count: int = 0


class Candidate(GeminiModel):
    content: Content | None = None
    finish_reason: str | None = None
    index: int | None = None


class GenerateContentResponse(GeminiModel):
    candidates: list[Candidate] = Field(default_factory=list)
    prompt_feedback: dict[str, Any] | None = None
    usage_metadata: UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None


# --- validation ---------------------------------------------------------------------------------


def _param(loc: tuple[int | str, ...]) -> str:
    """pydantic's error location as Google names a field: `contents[0].parts[1].inlineData`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier() or "_" in part:
            name = to_camel(part) if "_" in part else part
            path += f".{name}" if path else name
    return path


def _parse(model: type[GeminiModel], body: Any) -> Any:
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object.")
    try:
        return model.model_validate(body, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        param = _param(tuple(first["loc"])) or None
        if first["type"] == "missing":
            raise GatewayError(400, f"Missing required field: '{param}'.", param=param, code="invalid_value") from None
        wrong = invalid_type(exc, first, param, lambda loc: _param(tuple(loc)) or None)
        if wrong is not None:
            raise wrong from None
        detail = str(first["msg"]).removeprefix("Value error, ")
        where = f"'{param}'" if param else "the request"
        raise GatewayError(400, f"Invalid value at {where}: {detail}.", param=param, code="invalid_value") from None


def parse_generate_request(body: Any) -> GenerateContentRequest:
    """Validate a generateContent body (with its path's model); GatewayError 400 naming the field."""
    request: GenerateContentRequest = _parse(GenerateContentRequest, body)
    return request


def parse_count_tokens_request(body: Any) -> CountTokensRequest:
    request: CountTokensRequest = _parse(CountTokensRequest, body)
    return request
