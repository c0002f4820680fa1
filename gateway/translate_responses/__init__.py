"""OpenAI's Responses API served by a chat-completions upstream: pure translations both ways.

    body = chat_request(request, history)                      # CreateResponse -> chat request body
    response = response_from_completion(request, completion, ids)   # chat completion -> Response
    stream = ResponseStream(request, ids)                      # chat chunks -> Responses events
    events = stream.feed(chunk) ... + stream.finish(usage) (or stream.fail(message, status))

`history` is what `previous_response_id` stands for: the items of the earlier turns (each turn's
input items, then its output items), oldest first. `instructions` are not carried over from
earlier turns, as the spec says. No I/O here and no clock: ids and timestamps come in as `Ids`.

Choices where the spec leaves room:
- `developer` and `system` messages both become `system`: every chat upstream knows that role.
- Reasoning the upstream sends (`reasoning_content` or `reasoning`) becomes a reasoning item whose
  summary holds the text, with the `response.reasoning_summary_*` events clients display.
- Reasoning items of earlier turns are dropped: chat completions take no reasoning as input.
- What only OpenAI's servers can do (hosted tools, stored prompts, file ids) is a 400 naming the
  param; request fields about OpenAI's own storage or output options (`include`, `truncation`,
  `store`, `metadata`, ...) are ours to keep or are ignored, and are not sent upstream.
"""

from gateway.translate_responses.answer import (
    Ids,
    output_text,
    response_from_completion,
    response_shell,
    response_usage,
)
from gateway.translate_responses.request import chat_request, unsupported
from gateway.translate_responses.stream import ResponseStream

__all__ = [
    "Ids",
    "ResponseStream",
    "chat_request",
    "output_text",
    "response_from_completion",
    "response_shell",
    "response_usage",
    "unsupported",
]
