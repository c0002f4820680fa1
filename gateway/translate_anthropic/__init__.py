"""Anthropic's Messages API <-> OpenAI's chat completions: pure translations, both ways.

An Anthropic client (Claude Code, the anthropic SDKs) calling a model whose upstream speaks
OpenAI's format:

    body = messages_to_chat(request)                       # MessagesRequest -> chat request body
    message = chat_completion_to_message(completion)       # chat.completion -> Message
    stream = ChatToMessagesStream(model, input_tokens)     # chat chunks -> Anthropic's events

An OpenAI client calling a model on an Anthropic upstream:

    body = messages_body(request, max_tokens=cap)          # ChatCompletionRequest -> Messages body
    completion = message_to_chat_completion(message)       # Message -> chat.completion
    stream = MessagesToChatStream()                        # Anthropic's events -> chat chunks

and errors both ways (`anthropic_error`, `openai_error`). Nothing here does I/O or reads the
catalogue: callers pass in what a translation needs (the output cap, the prompt's estimate).
One package for the pair, a module per concern: requests, answers, streams, errors.

Errors about the client's request are GatewayError 400s naming the param in the client's own
format: `messages.1.content.0.source` for an Anthropic client, `messages[1].content[0]` for an
OpenAI one.
"""

from gateway.translate_anthropic.answers import (
    UnreadableAnswer,
    chat_completion_to_message,
    message_id,
    message_to_chat_completion,
    usage_to_anthropic,
    usage_to_openai,
)
from gateway.translate_anthropic.common import FINISH_TO_STOP, STOP_TO_FINISH
from gateway.translate_anthropic.errors import (
    ANTHROPIC_ERROR_TYPES,
    anthropic_error,
    describe_anthropic_error,
    openai_error,
)
from gateway.translate_anthropic.requests import messages_body, messages_to_chat
from gateway.translate_anthropic.streams import ChatToMessagesStream, MessagesToChatStream

__all__ = [
    "ANTHROPIC_ERROR_TYPES",
    "FINISH_TO_STOP",
    "STOP_TO_FINISH",
    "ChatToMessagesStream",
    "MessagesToChatStream",
    "UnreadableAnswer",
    "anthropic_error",
    "chat_completion_to_message",
    "describe_anthropic_error",
    "message_id",
    "message_to_chat_completion",
    "messages_body",
    "messages_to_chat",
    "openai_error",
    "usage_to_anthropic",
    "usage_to_openai",
]
