"""Requests: an Anthropic request for an OpenAI-compatible upstream, and the reverse."""

from __future__ import annotations

import json
from typing import Any

from gateway.anthropic_messages.protocol import (
    AssistantMessage,
    Base64ImageSource,
    Base64PdfSource,
    ContentSource,
    CustomTool,
    DocumentBlock,
    ImageBlock,
    MessagesRequest,
    OtherBlock,
    PlainTextSource,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ThinkingEnabled,
    ToolChoiceAny,
    ToolChoiceAuto,
    ToolChoiceNone,
    ToolChoiceTool,
    ToolResultBlock,
    ToolUseBlock,
    UrlSource,
    UserMessage,
)
from gateway.anthropic_messages.protocol import SystemMessage as AnthropicSystem
from gateway.chat_completions.protocol import AssistantMessage as ChatAssistant
from gateway.chat_completions.protocol import (
    ChatCompletionRequest,
    FilePart,
    FunctionTool,
    ImagePart,
    NamedToolChoice,
    TextPart,
)
from gateway.chat_completions.protocol import ToolMessage as ChatTool
from gateway.translate_anthropic import server_blocks
from gateway.translate_anthropic.common import (
    EFFORT_BUDGETS,
    MAX_OPENAI_STOPS,
    bad,
    data_url,
    json_object,
    split_data_url,
)


def _text_of(blocks: str | list[TextBlock]) -> str:
    return blocks if isinstance(blocks, str) else "\n\n".join(block.text for block in blocks)


def _image_part(block: ImageBlock, param: str) -> dict[str, Any]:
    source = block.source
    if isinstance(source, Base64ImageSource):
        url = data_url(source.media_type, source.data)
    elif isinstance(source, UrlSource):
        url = source.url
    else:
        raise bad(f"{param}.source: files of Anthropic's Files API reach only models on Anthropic.", f"{param}.source")
    return {"type": "image_url", "image_url": {"url": url}}


def _document_parts(block: DocumentBlock, param: str) -> list[dict[str, Any]]:
    """A document as OpenAI parts: a PDF as a `file` part, text as text; what OpenAI cannot take is a 400."""
    source = block.source
    heading = "\n\n".join(text for text in (block.title, block.context) if text)
    parts: list[dict[str, Any]] = [{"type": "text", "text": heading}] if heading else []
    if isinstance(source, Base64PdfSource):
        data = data_url(source.media_type, source.data)
        parts.append({"type": "file", "file": {"filename": block.title or "document.pdf", "file_data": data}})
    elif isinstance(source, PlainTextSource):
        parts.append({"type": "text", "text": source.data})
    elif isinstance(source, ContentSource):
        if isinstance(source.content, str):
            parts.append({"type": "text", "text": source.content})
        else:
            for index, item in enumerate(source.content):
                parts.extend(_user_parts(item, f"{param}.source.content.{index}"))
    else:
        kind = "documents by URL" if isinstance(source, UrlSource) else "files of Anthropic's Files API"
        raise bad(
            f"{param}.source: {kind} reach only models on Anthropic; send the document's data.", f"{param}.source"
        )
    return parts


def _user_parts(block: Any, param: str) -> list[dict[str, Any]]:
    """One block of a user turn (or of a tool result) as OpenAI content parts."""
    if isinstance(block, TextBlock):
        return [{"type": "text", "text": block.text}]
    if isinstance(block, ImageBlock):
        return [_image_part(block, param)]
    if isinstance(block, DocumentBlock):
        return _document_parts(block, param)
    kind = getattr(block, "type", "?")
    raise bad(f"{param}.type: '{kind}' blocks reach only models on Anthropic.", f"{param}.type")


def _collapse(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Text-only content as one string: every OpenAI-compatible server takes that, not all take parts."""
    if all(part["type"] == "text" for part in parts):
        return "\n\n".join(part["text"] for part in parts)
    return parts


def _tool_result(block: ToolResultBlock, param: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A tool result as a `tool` message, and the images it holds (OpenAI's tool messages take only text)."""
    texts: list[str] = []
    media: list[dict[str, Any]] = []
    if isinstance(block.content, str):
        texts.append(block.content)
    else:
        for index, item in enumerate(block.content or ()):
            for part in _user_parts(item, f"{param}.content.{index}"):
                if part["type"] == "text":
                    texts.append(part["text"])
                else:
                    media.append(part)
    text = "\n\n".join(texts)
    if block.is_error:
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": block.tool_use_id, "content": text}, media


def _user_turn(message: UserMessage, param: str) -> list[dict[str, Any]]:
    """A user turn: its tool results first (as OpenAI wants them right after the calls), then the rest."""
    if isinstance(message.content, str):
        return [{"role": "user", "content": message.content}]
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(message.content):
        where = f"{param}.content.{index}"
        if isinstance(block, ToolResultBlock):
            tool, media = _tool_result(block, where)
            tools.append(tool)
            parts.extend(media)
        elif isinstance(block, ThinkingBlock | RedactedThinkingBlock):
            continue  # only an assistant thinks; nothing to tell an OpenAI model
        elif isinstance(block, ToolUseBlock):
            raise bad(f"{where}.type: tool_use blocks belong in assistant turns.", f"{where}.type")
        else:
            parts.extend(_user_parts(block, where))
    turn = list(tools)
    if parts or not tools:
        turn.append({"role": "user", "content": _collapse(parts)})
    return turn


def _assistant_turn(message: AssistantMessage, param: str) -> list[dict[str, Any]]:
    """An assistant turn as chat messages: one, or (with the server tools we ran in it) one per round of
    calls, each followed by its results as `tool` messages."""
    if isinstance(message.content, str):
        return [{"role": "assistant", "content": message.content}]
    turns: list[dict[str, Any]] = []
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []

    def flush() -> None:
        turn: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
        if thoughts:
            turn["reasoning_content"] = "".join(thoughts)
        if calls:
            turn["tool_calls"] = list(calls)
        turns.extend([turn, *results])
        for part in (texts, thoughts, calls, results):
            part.clear()

    for index, block in enumerate(message.content):
        if results and not (isinstance(block, OtherBlock) and block.type in server_blocks.RESULTS):
            flush()  # the round of server tools ended: what follows is the model's next step
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ToolUseBlock):
            arguments = json.dumps(block.input, ensure_ascii=False)
            calls.append({"id": block.id, "type": "function", "function": {"name": block.name, "arguments": arguments}})
        elif isinstance(block, ThinkingBlock):
            thoughts.append(block.thinking)
        elif isinstance(block, RedactedThinkingBlock):
            continue  # encrypted for Anthropic's models alone
        elif isinstance(block, OtherBlock) and block.type in server_blocks.USES:
            calls.append(server_blocks.call_of(block.model_dump()))
        elif isinstance(block, OtherBlock) and block.type in server_blocks.RESULTS:
            results.append(server_blocks.result_message(block.model_dump()))
        else:
            where = f"{param}.content.{index}.type"
            raise bad(f"{where}: '{block.type}' blocks in assistant turns reach only models on Anthropic.", where)
    if texts or thoughts or calls or results or not turns:
        flush()
    return turns


def _chat_tools(request: MessagesRequest) -> list[dict[str, Any]]:
    tools = []
    for index, tool in enumerate(request.tools if isinstance(request.tools, list) else ()):
        if not isinstance(tool, CustomTool):
            where = f"tools.{index}.type"
            raise bad(f"{where}: Anthropic's server tool '{tool.type}' runs only on models on Anthropic.", where)
        function: dict[str, Any] = {"name": tool.name}
        if tool.description is not None:
            function["description"] = tool.description
        function["parameters"] = tool.input_schema
        tools.append({"type": "function", "function": function})
    return tools


def _chat_tool_choice(request: MessagesRequest, body: dict[str, Any]) -> None:
    choice = request.tool_choice
    if choice is None:
        return
    if isinstance(choice, ToolChoiceNone):
        body["tool_choice"] = "none"
        return
    if isinstance(choice, ToolChoiceAuto):
        body["tool_choice"] = "auto"
    elif isinstance(choice, ToolChoiceAny):
        body["tool_choice"] = "required"
    elif isinstance(choice, ToolChoiceTool):
        body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    if choice.disable_parallel_tool_use:
        body["parallel_tool_calls"] = False


def _effort(budget: int) -> str:
    if budget < EFFORT_BUDGETS["medium"]:
        return "low"
    return "medium" if budget < EFFORT_BUDGETS["high"] else "high"


def messages_to_chat(request: MessagesRequest) -> dict[str, Any]:
    """A Messages request as a chat-completions body (model: the client's id; the caller swaps it).

    Anthropic-only features that change no meaning for another model are left out (`cache_control`,
    signatures, redacted thinking, `service_tier`, betas' fields); those that would (server tools,
    files and documents by reference, a cache pre-warm with `max_tokens: 0`) are a 400 naming them.
    """
    if request.max_tokens == 0:
        raise bad("max_tokens: 0 pre-warms Anthropic's prompt cache; this model is not on Anthropic.", "max_tokens")
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": _text_of(request.system)})
    for position, message in enumerate(request.messages):
        param = f"messages.{position}"
        if isinstance(message, AnthropicSystem):
            messages.append({"role": "system", "content": _text_of(message.content)})
        elif isinstance(message, UserMessage):
            messages.extend(_user_turn(message, param))
        else:
            messages.extend(_assistant_turn(message, param))
    body: dict[str, Any] = {"model": request.model, "messages": messages, "max_tokens": request.max_tokens}
    stops = request.stop_sequences
    if stops:
        if len(stops) > MAX_OPENAI_STOPS:
            raise bad(
                f"stop_sequences: this model takes at most {MAX_OPENAI_STOPS} stop sequences, you gave {len(stops)}.",
                "stop_sequences",
            )
        body["stop"] = list(stops)
    for name in ("temperature", "top_p", "top_k"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value  # top_k is no OpenAI field, but vLLM, llama.cpp and others take it
    if request.metadata is not None and request.metadata.user_id:
        body["user"] = request.metadata.user_id
    tools = _chat_tools(request)
    if tools:
        body["tools"] = tools
        _chat_tool_choice(request, body)
    if isinstance(request.thinking, ThinkingEnabled):
        body["reasoning_effort"] = _effort(request.thinking.budget_tokens)
    _output_config(request, body)
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # message_delta must carry the usage
    return body


def _output_config(request: MessagesRequest, body: dict[str, Any]) -> None:
    """Anthropic's structured outputs and effort (`output_config`) as OpenAI's equivalents."""
    config = (request.model_extra or {}).get("output_config")
    if not isinstance(config, dict):
        return
    output = config.get("format")
    if isinstance(output, dict) and output.get("type") == "json_schema" and isinstance(output.get("schema"), dict):
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": output["schema"]}}
    effort = config.get("effort")
    if effort in ("low", "medium", "high"):
        body["reasoning_effort"] = effort


# =============================================================================================
# An OpenAI request for an Anthropic upstream


def _openai_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n\n".join(part.text for part in content or () if isinstance(part, TextPart))


def _anthropic_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    """OpenAI content (a string or parts) as Anthropic content blocks."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    blocks: list[dict[str, Any]] = []
    for index, part in enumerate(content or ()):
        where = f"{param}[{index}]"
        if isinstance(part, TextPart):
            if part.text.strip():  # Anthropic refuses blank text blocks
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            url = part.image_url.url
            inline = split_data_url(url)
            if inline is not None:
                blocks.append(
                    {"type": "image", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}
                )
            else:
                blocks.append({"type": "image", "source": {"type": "url", "url": url}})
        elif isinstance(part, FilePart):
            blocks.append(_file_block(part, where))
        else:
            kind = getattr(part, "type", "?")
            raise bad(f"Invalid content part at '{where}': this model takes no '{kind}' parts.", f"{where}.type")
    return blocks


def _file_block(part: FilePart, param: str) -> dict[str, Any]:
    inline = split_data_url(str(part.file.get("file_data") or ""))
    if inline is None or inline[0] != "application/pdf":
        raise bad(
            f"Invalid file at '{param}': this model takes PDF files sent inline as file_data "
            "(data:application/pdf;base64,...).",
            f"{param}.file",
        )
    block: dict[str, Any] = {
        "type": "document",
        "source": {"type": "base64", "media_type": inline[0], "data": inline[1]},
    }
    filename = part.file.get("filename")
    if isinstance(filename, str) and filename:
        block["title"] = filename
    return block


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Add blocks as a turn of `role`, merged into the previous turn when it has the same role.

    Anthropic refuses empty turns, which OpenAI clients do send (an assistant turn that only called
    tools upstream of us, a blank user message): those are left out.
    """
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _assistant_blocks(message: ChatAssistant, param: str) -> list[dict[str, Any]]:
    blocks = _anthropic_blocks(message.content, f"{param}.content") if message.content is not None else []
    if not blocks and message.refusal:
        blocks.append({"type": "text", "text": message.refusal})
    for index, call in enumerate(message.tool_calls or ()):
        where = f"{param}.tool_calls[{index}]"
        if call.function is None:
            raise bad(f"Invalid tool call at '{where}': this model takes function calls only.", f"{where}.type")
        arguments = json_object(call.function.arguments)
        if arguments is None:
            raise bad(
                f"Invalid value for '{where}.function.arguments': this model needs a JSON object.",
                f"{where}.function.arguments",
            )
        blocks.append({"type": "tool_use", "id": call.id, "name": call.function.name, "input": arguments})
    return blocks


def _anthropic_turns(request: ChatCompletionRequest) -> tuple[list[dict[str, Any]], list[str]]:
    """The conversation as Anthropic turns, and the system prompt's parts (from anywhere in it)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for position, message in enumerate(request.messages):
        param = f"messages[{position}]"
        role = message.role
        if role in ("system", "developer"):
            system.append(_openai_text(message.content))
        elif role == "user":
            _append(turns, "user", _anthropic_blocks(message.content, f"{param}.content"))
        elif role == "assistant":
            assert isinstance(message, ChatAssistant)
            _append(turns, "assistant", _assistant_blocks(message, param))
        elif role == "tool":
            assert isinstance(message, ChatTool)
            result = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": _openai_text(message.content),
            }
            _append(turns, "user", [result])
        else:
            raise bad(
                f"Invalid value for '{param}.role': this model takes tool messages, not the deprecated function role.",
                f"{param}.role",
            )
    if not turns:
        raise bad(
            "Invalid value for 'messages': this model needs a user or assistant message with content.", "messages"
        )
    return turns, system


def _anthropic_tools(request: ChatCompletionRequest, body: dict[str, Any]) -> None:
    if request.functions is not None:
        raise bad("Invalid parameter 'functions': this model takes `tools` instead.", "functions")
    tools: list[dict[str, Any]] = []
    for index, tool in enumerate(request.tools if isinstance(request.tools, list) else ()):
        if not isinstance(tool, FunctionTool):
            raise bad(
                f"Invalid value for 'tools[{index}].type': this model takes function tools.", f"tools[{index}].type"
            )
        spec: dict[str, Any] = {"name": tool.function.name}
        if tool.function.description is not None:
            spec["description"] = tool.function.description
        spec["input_schema"] = tool.function.parameters or {"type": "object", "properties": {}}
        tools.append(spec)
    if not tools:
        return
    body["tools"] = tools
    choice = request.tool_choice
    anthropic: dict[str, Any] = {"type": "auto"}
    if choice == "none":
        anthropic = {"type": "none"}
    elif choice == "required":
        anthropic = {"type": "any"}
    elif isinstance(choice, NamedToolChoice):
        function = (choice.model_extra or {}).get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if choice.type != "function" or not isinstance(name, str):
            raise bad("Invalid value for 'tool_choice': this model takes a named function only.", "tool_choice")
        anthropic = {"type": "tool", "name": name}
    if request.parallel_tool_calls is False and anthropic["type"] != "none":
        anthropic["disable_parallel_tool_use"] = True
    if choice is not None or "disable_parallel_tool_use" in anthropic:
        body["tool_choice"] = anthropic


def _thinking(request: ChatCompletionRequest, max_tokens: int) -> dict[str, Any] | None:
    """Anthropic's `thinking` for the request: as sent (an extra field), or from reasoning_effort."""
    given = (request.model_extra or {}).get("thinking")
    if isinstance(given, dict):
        return given
    budget = EFFORT_BUDGETS.get(request.reasoning_effort or "")
    if budget is None:
        return None
    budget = min(budget, max_tokens - 1)  # Anthropic wants the budget below max_tokens
    return {"type": "enabled", "budget_tokens": budget} if budget >= EFFORT_BUDGETS["low"] else None


def messages_body(request: ChatCompletionRequest, *, max_tokens: int) -> dict[str, Any]:
    """A chat-completions request as a Messages body (model: the client's id; the caller swaps it).

    `max_tokens`, which Anthropic requires, is the request's output cap (the model's output limit
    when the client sent none). Following Anthropic's own OpenAI-compatibility layer, temperature
    is capped at 1, and parameters it has no equivalent for (logprobs, penalties, seed, ...) are
    left out; `n` above 1 and the deprecated `functions` are 400s.
    """
    if request.choices() > 1:
        raise bad("Invalid value for 'n': this model gives one choice per request.", "n")
    turns, system = _anthropic_turns(request)
    body: dict[str, Any] = {"model": request.model, "messages": turns, "max_tokens": max_tokens}
    if system:
        body["system"] = "\n\n".join(system)
    user = request.user or request.safety_identifier
    if user:
        body["metadata"] = {"user_id": user}
    if request.stop is not None:
        body["stop_sequences"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    if request.stream:
        body["stream"] = True
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, 1.0)
    thinking = _thinking(request, max_tokens)
    if thinking is not None:
        body["thinking"] = thinking
    _anthropic_tools(request, body)
    top_k = (request.model_extra or {}).get("top_k")
    if isinstance(top_k, int) and not isinstance(top_k, bool):
        body["top_k"] = top_k
    if request.top_p is not None:
        body["top_p"] = request.top_p
    schema = request.response_format
    if schema is not None and schema.type == "json_schema":
        json_schema = getattr(schema, "json_schema", None)
        if json_schema is not None and json_schema.schema_ is not None:
            body["output_config"] = {"format": {"type": "json_schema", "schema": json_schema.schema_}}
    return body
