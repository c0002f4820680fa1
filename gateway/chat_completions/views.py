"""POST /v1/chat/completions."""

from gateway.chat_completions.serving import ChatServing
from gateway.endpoint import serving_endpoint
from gateway.wire import DATA_ONLY

chat_completions = serving_endpoint(ChatServing, DATA_ONLY)
