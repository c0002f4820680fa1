"""POST /v1/messages and /v1/messages/count_tokens, answering in Anthropic's shape.

anthropic-version and anthropic-beta are accepted as sent: the answer's shape is the same for all.
"""

from __future__ import annotations

from django.http import HttpResponseBase

from gateway.anthropic_messages.server_tools import MessagesEndpointServing
from gateway.anthropic_messages.serving import count_tokens
from gateway.endpoint import ApiCall, endpoint, serving_endpoint
from gateway.wire import ANTHROPIC, ANTHROPIC_SSE, json_response

create_message = serving_endpoint(MessagesEndpointServing, ANTHROPIC_SSE, shape=ANTHROPIC)


@endpoint("POST", body=True, shape=ANTHROPIC)
async def count_message_tokens(call: ApiCall) -> HttpResponseBase:
    return json_response(await count_tokens(call.caller, call.body))
