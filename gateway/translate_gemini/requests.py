"""Requests: a Gemini request for an OpenAI-compatible upstream, and an OpenAI chat request for Gemini."""

from __future__ import annotations

import json
import mimetypes
from typing import Any

from gateway.chat_completions.protocol import AssistantMessage as ChatAssistant
from gateway.chat_completions.protocol import (
    ChatCompletionRequest,
    DeveloperMessage,
    FilePart,
    FunctionTool,
    ImagePart,
    NamedToolChoice,
    SystemMessage,
    TextPart,
)
from gateway.chat_completions.protocol import ToolMessage as ChatTool
from gateway.gemini_api.protocol import Content, GenerateContentRequest, GenerationConfig, Part
from gateway.translate_gemini.common import EFFORT_BUDGETS, LEVEL_EFFORTS, arguments_object, bad

MAX_OPENAI_STOPS = 4
# Where a tool call's thought signature rides in OpenAI's shape (as Google's OpenAI-compatible API puts it).
EXTRA = "extra_content"
# What Google's docs (thought signatures) tell to send for function calls that came without a signature.
NO_SIGNATURE = "skip_thought_signature_validator"

# =============================================================================================
# A Gemini request for an OpenAI-compatible upstream


def _data_url(mime_type: str, data: str) -> str:
    return f"data:{mime_type};base64,{data}"


def _user_part(part: Part, param: str) -> dict[str, Any] | None:
    """One part of a user turn as an OpenAI content part (None for a bare thought signature)."""
    if part.text is not None:
        return {"type": "text", "text": part.text}
    if part.inline_data is not None:
        blob = part.inline_data
        if blob.mime_type.startswith("image/"):
            return {"type": "image_url", "image_url": {"url": _data_url(blob.mime_type, blob.data)}}
        name = "document" + (mimetypes.guess_extension(blob.mime_type) or "")
        return {"type": "file", "file": {"filename": name, "file_data": _data_url(blob.mime_type, blob.data)}}
    if part.file_data is not None:
        uri, mime = part.file_data.file_uri, part.file_data.mime_type or ""
        if uri.startswith(("http://", "https://")) and mime.startswith("image/"):
            return {"type": "image_url", "image_url": {"url": uri}}
        raise bad(f"{param}.fileData: files of Google's Files API reach only models on Gemini.", f"{param}.fileData")
    if part.thought_signature and not part.thought:
        return None
    kind = next((name for name in ("executable_code", "code_execution_result") if getattr(part, name)), "part")
    raise bad(f"{param}: {kind} parts reach only models on Gemini.", param)


class _CallIds:
    """Ids for the function calls of a conversation: Gemini's own when it gave them, else made up,
    and each function response matched to its call (by id, else the oldest unanswered call of its name)."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, str]] = []  # (name, id) of calls not answered yet
        self.made = 0

    def call(self, given: str | None, name: str) -> str:
        self.made += 1
        call_id = given or f"call_{self.made}"
        self.pending.append((name, call_id))
        return call_id

    def response(self, given: str | None, name: str) -> str:
        for position, (pending_name, call_id) in enumerate(self.pending):
            if (given and call_id == given) or (not given and pending_name == name):
                del self.pending[position]
                return call_id
        return given or self.call(None, name)


def _function_output(response: dict[str, Any]) -> str:
    """A function response as a tool message's text: its `output` or `result` as it is, else its JSON."""
    if set(response) <= {"output", "result"} and len(response) == 1:
        value = next(iter(response.values()))
        if isinstance(value, str):
            return value
    return json.dumps(response, ensure_ascii=False)


def _user_turn(content: Content, param: str, ids: _CallIds) -> list[dict[str, Any]]:
    """A user turn: its function responses as tool messages, then the rest as one user message."""
    messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content.parts):
        if part.function_response is not None:
            answer = part.function_response
            call_id = ids.response(answer.id, answer.name)
            messages.append({"role": "tool", "tool_call_id": call_id, "content": _function_output(answer.response)})
            continue
        converted = _user_part(part, f"{param}.parts[{index}]")
        if converted is not None:
            parts.append(converted)
    if parts:
        texts = all(part["type"] == "text" for part in parts)
        body = "\n\n".join(part["text"] for part in parts) if texts else parts
        messages.append({"role": "user", "content": body})
    return messages


def _model_turn(content: Content, param: str, ids: _CallIds) -> dict[str, Any]:
    """A model turn as an assistant message: thoughts as reasoning, function calls as tool calls."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for index, part in enumerate(content.parts):
        if part.function_call is not None:
            call = part.function_call
            tool_call: dict[str, Any] = {
                "id": ids.call(call.id, call.name),
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.args or {}, ensure_ascii=False)},
            }
            if part.thought_signature:
                tool_call[EXTRA] = {"google": {"thought_signature": part.thought_signature}}
            calls.append(tool_call)
        elif part.text is not None:
            (thoughts if part.thought else texts).append(part.text)
        elif not part.thought_signature:
            raise bad(f"{param}.parts[{index}]: a model turn holds text and function calls only.", param)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    return message


def json_schema(schema: Any) -> Any:
    """Gemini's OpenAPI-style Schema as JSON Schema: types in lower case, `nullable` as a null type."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted: dict[str, Any] = {}
    for name, value in schema.items():
        if name == "propertyOrdering":
            continue
        if name == "type" and isinstance(value, str):
            converted["type"] = value.lower()
        elif name == "properties" and isinstance(value, dict):
            converted[name] = {key: json_schema(item) for key, item in value.items()}
        elif name in ("items", "anyOf"):
            converted[name] = json_schema(value)
        else:
            converted[name] = value
    if converted.pop("nullable", False) is True and isinstance(converted.get("type"), str):
        converted["type"] = [converted["type"], "null"]
    return converted


def _tools(request: GenerateContentRequest, body: dict[str, Any]) -> None:
    declarations = [d for tool in request.tools or () for d in tool.function_declarations or ()]
    if not declarations:
        return
    tools = []
    for declaration in declarations:
        function: dict[str, Any] = {"name": declaration.name}
        if declaration.description:
            function["description"] = declaration.description
        parameters = declaration.parameters_json_schema or json_schema(declaration.parameters)
        if parameters:
            function["parameters"] = parameters
        tools.append({"type": "function", "function": function})
    body["tools"] = tools
    config = request.tool_config.function_calling_config if request.tool_config else None
    if config is None or config.mode in (None, "MODE_UNSPECIFIED", "AUTO", "VALIDATED"):
        return
    if config.mode == "NONE":
        body["tool_choice"] = "none"
    elif config.allowed_function_names and len(config.allowed_function_names) == 1:
        body["tool_choice"] = {"type": "function", "function": {"name": config.allowed_function_names[0]}}
    else:
        body["tool_choice"] = "required"


def _effort(config: GenerationConfig) -> str | None:
    thinking = config.thinking_config
    if thinking is None:
        return None
    if thinking.thinking_level in LEVEL_EFFORTS:
        return LEVEL_EFFORTS[thinking.thinking_level]
    budget = thinking.thinking_budget
    if budget is None or budget < 0:
        return None
    if budget == 0:
        return "none"
    return "low" if budget <= EFFORT_BUDGETS["low"] else "medium" if budget <= EFFORT_BUDGETS["medium"] else "high"


def _generation(config: GenerationConfig | None, body: dict[str, Any]) -> None:
    if config is None:
        return
    simple = {
        "temperature": config.temperature,
        "top_p": config.top_p,
        "top_k": config.top_k,  # no OpenAI field, but vLLM, llama.cpp and others take it
        "max_tokens": config.max_output_tokens,
        "n": config.candidate_count,
        "seed": config.seed,
        "presence_penalty": config.presence_penalty,
        "frequency_penalty": config.frequency_penalty,
        "reasoning_effort": _effort(config),
    }
    body.update({name: value for name, value in simple.items() if value is not None})
    stops = config.stop_sequences
    if stops:
        if len(stops) > MAX_OPENAI_STOPS:
            raise bad(
                f"generationConfig.stopSequences: this model takes at most {MAX_OPENAI_STOPS} stop sequences.",
                "generationConfig.stopSequences",
            )
        body["stop"] = list(stops)
    if config.response_mime_type == "application/json":
        schema = config.response_json_schema or json_schema(config.response_schema)
        if schema:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
        else:
            body["response_format"] = {"type": "json_object"}


def gemini_to_chat(request: GenerateContentRequest, *, stream: bool = False) -> dict[str, Any]:
    """A generateContent request as a chat-completions body (model: the client's id; the caller swaps it).

    What changes no meaning for another model is left out (safety settings, cached content, thought
    signatures but on tool calls); what would (Files API files, code execution) is a 400 naming it.
    """
    messages: list[dict[str, Any]] = []
    if request.system_instruction is not None:
        system = [part.text for part in request.system_instruction.parts if part.text is not None]
        if system:
            messages.append({"role": "system", "content": "\n\n".join(system)})
    ids = _CallIds()
    for position, content in enumerate(request.contents):
        param = f"contents[{position}]"
        if content.role == "model":
            messages.append(_model_turn(content, param, ids))
        else:
            messages.extend(_user_turn(content, param, ids))
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    _generation(request.generation_config, body)
    _tools(request, body)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


# =============================================================================================
# An OpenAI chat request for a Gemini upstream


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n\n".join(part.text for part in content or () if isinstance(part, TextPart))


def _split_data_url(url: str) -> tuple[str, str] | None:
    if not url.startswith("data:"):
        return None
    header, comma, data = url[5:].partition(",")
    mime, _, encoding = header.partition(";")
    return (mime, data) if comma and encoding == "base64" and mime else None


def _gemini_parts(content: Any, param: str) -> list[dict[str, Any]]:
    """OpenAI content (a string or parts) as Gemini parts."""
    if isinstance(content, str):
        return [{"text": content}]
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content or ()):
        if isinstance(part, TextPart):
            parts.append({"text": part.text})
        elif isinstance(part, ImagePart):
            url = part.image_url.url
            inline = _split_data_url(url)
            if inline is not None:
                parts.append({"inlineData": {"mimeType": inline[0], "data": inline[1]}})
            else:
                mime = mimetypes.guess_type(url.split("?")[0])[0] or "image/jpeg"
                parts.append({"fileData": {"mimeType": mime, "fileUri": url}})
        elif isinstance(part, FilePart):
            inline = _split_data_url(str(part.file.get("file_data") or ""))
            if inline is None:
                raise bad(f"{param}[{index}]: a model on Gemini takes files as data only.", f"{param}[{index}]")
            parts.append({"inlineData": {"mimeType": inline[0], "data": inline[1]}})
        else:
            kind = getattr(part, "type", "?")
            raise bad(f"{param}[{index}]: '{kind}' parts do not reach a model on Gemini.", f"{param}[{index}]")
    return parts


def _signature(tool_call: Any) -> str | None:
    extra = (tool_call.model_extra or {}).get(EXTRA)
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) else None


def _model_parts(message: ChatAssistant) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    text = _text(message.content)
    if text:
        parts.append({"text": text})
    for call in message.tool_calls or ():
        if call.function is None:
            continue
        function_call: dict[str, Any] = {"name": call.function.name, "args": arguments_object(call.function.arguments)}
        if not call.id.startswith("call_"):
            function_call["id"] = call.id
        part: dict[str, Any] = {"functionCall": function_call}
        signature = _signature(call)
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    calls = [part for part in parts if "functionCall" in part]
    if calls and not any("thoughtSignature" in part for part in calls):
        # Calls that come with no signature (another model's, or a client's that drops them): Gemini 3
        # refuses a step whose first call lacks one, and Google names this value for such histories.
        calls[0]["thoughtSignature"] = NO_SIGNATURE
    return parts


def _function_response(message: ChatTool, names: dict[str, str]) -> dict[str, Any]:
    text = _text(message.content)
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    answer: dict[str, Any] = {
        "name": names.get(message.tool_call_id, "function"),
        "response": value if isinstance(value, dict) else {"output": text},
    }
    if not message.tool_call_id.startswith("call_"):
        answer["id"] = message.tool_call_id
    return {"functionResponse": answer}


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    """Parts as a turn of `role`, joined to the last turn when it has the same role."""
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _chat_generation(request: ChatCompletionRequest, max_tokens: int, thoughts: bool) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.stop:
        config["stopSequences"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    response_format = request.response_format
    if response_format is not None and response_format.type != "text":
        config["responseMimeType"] = "application/json"
        schema = getattr(getattr(response_format, "json_schema", None), "schema_", None)
        if schema:
            config["responseJsonSchema"] = schema
    named = {
        "candidateCount": request.n,
        "maxOutputTokens": max_tokens,
        "temperature": request.temperature,
        "topP": request.top_p,
        "topK": (request.model_extra or {}).get("top_k"),
        "seed": request.seed,
        "presencePenalty": request.presence_penalty,
        "frequencyPenalty": request.frequency_penalty,
    }
    config.update({name: value for name, value in named.items() if value is not None})
    effort = request.reasoning_effort
    if effort is not None:
        budget = EFFORT_BUDGETS[effort]
        config["thinkingConfig"] = {"includeThoughts": budget != 0, "thinkingBudget": budget}
    elif thoughts:
        config["thinkingConfig"] = {"includeThoughts": True}
    return config


def _chat_tools(request: ChatCompletionRequest, body: dict[str, Any]) -> None:
    declarations = []
    for tool in request.tools if isinstance(request.tools, list) else ():
        if isinstance(tool, FunctionTool):
            function = tool.function
            declaration: dict[str, Any] = {"name": function.name}
            if function.description:
                declaration["description"] = function.description
            if function.parameters:
                declaration["parametersJsonSchema"] = function.parameters
            declarations.append(declaration)
    if not declarations:
        return
    body["tools"] = [{"functionDeclarations": declarations}]
    choice = request.tool_choice
    mode: dict[str, Any] | None = None
    if choice == "none":
        mode = {"mode": "NONE"}
    elif choice == "required":
        mode = {"mode": "ANY"}
    elif isinstance(choice, NamedToolChoice):
        named = (choice.model_extra or {}).get("function")
        name = named.get("name") if isinstance(named, dict) else None
        mode = {"mode": "ANY", "allowedFunctionNames": [name]} if isinstance(name, str) else {"mode": "ANY"}
    if mode is not None:
        body["toolConfig"] = {"functionCallingConfig": mode}


def chat_to_gemini(request: ChatCompletionRequest, *, max_tokens: int, thoughts: bool = False) -> dict[str, Any]:
    """A chat request as a generateContent body (the model goes in the URL, not here).

    System and developer messages become the system instruction; tool messages function responses,
    named after their calls; a tool call's thought signature (`extra_content.google.thought_signature`,
    as our answers carry it) goes back on its function call. `thoughts`: ask for thought summaries
    (the model reasons), which come back as `reasoning_content`.
    """
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for position, message in enumerate(request.messages):
        param = f"messages[{position}].content"
        if isinstance(message, SystemMessage | DeveloperMessage):
            system.append(_text(message.content))
        elif isinstance(message, ChatAssistant):
            for call in message.tool_calls or ():
                if call.function is not None:
                    names[call.id] = call.function.name
            _append(contents, "model", _model_parts(message))
        elif isinstance(message, ChatTool):
            _append(contents, "user", [_function_response(message, names)])
        else:
            _append(contents, "user", _gemini_parts(getattr(message, "content", ""), param))
    body: dict[str, Any] = {"contents": contents}
    _chat_tools(request, body)
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    body["generationConfig"] = _chat_generation(request, max_tokens, thoughts)
    return body
