"""POST /v1/chat/completions."""

from gateway.chat_completions.tool_loop import ChatCompletionsServing
from gateway.endpoint import serving_endpoint
from gateway.wire import DATA_ONLY

chat_completions = serving_endpoint(ChatCompletionsServing, DATA_ONLY)
