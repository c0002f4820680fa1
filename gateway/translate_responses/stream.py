"""Chat completion chunks -> the Responses API's stream events (see the package's docstring)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.chat_completions.protocol import reasoning_text
from gateway.responses_api.protocol import CreateResponse
from gateway.translate_responses.answer import (
    Ids,
    as_object,
    finished,
    message_item,
    response_shell,
    response_usage,
    summary,
    text_part,
)
from gateway.translate_responses.names import tool_names


class ResponseStream:
    """Turns a chat-completions stream into the Responses API's events, numbered from 0.

    Pure and stateful: `start()` (also implied by the first `feed`) gives `response.created` and
    `response.in_progress`; `feed(chunk)` the events of one upstream chunk (its first choice);
    `finish(usage)` closes what is open and ends with `response.completed` (or `.incomplete`
    when the output was cut short); `fail(message, status)` ends with `response.failed`.
    `response` is the Response as it stands (the final one once finished).
    """

    def __init__(self, request: CreateResponse, ids: Ids, model: str) -> None:
        self.ids = ids
        self.response = response_shell(request, ids, model)
        self._sequence = 0
        self._started = False
        self._ended = False
        self._finish_reason: Any = None
        self._usage: Any = None
        self._reasoning: dict[str, Any] | None = None  # the open reasoning item
        self._reasoning_text = ""
        self._message: dict[str, Any] | None = None  # the open message item
        self._text: dict[str, Any] | None = None  # its open output_text part
        self._refusal: dict[str, Any] | None = None  # its open refusal part
        self._calls: dict[int, dict[str, Any]] = {}  # open function calls by the chunks' index
        self._names = tool_names(request)

    @property
    def output(self) -> list[dict[str, Any]]:
        output: list[dict[str, Any]] = self.response["output"]
        return output

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, **fields, "sequence_number": self._sequence}
        self._sequence += 1
        return event

    def _snapshot(self) -> dict[str, Any]:
        return {**self.response, "output": [dict(item) for item in self.output]}

    def start(self) -> list[dict[str, Any]]:
        if self._started:
            return []
        self._started = True
        return [
            self._event("response.created", response=self._snapshot()),
            self._event("response.in_progress", response=self._snapshot()),
        ]

    # -- items ---------------------------------------------------------------------------------
    def _add_item(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        self.output.append(item)
        return [self._event("response.output_item.added", output_index=len(self.output) - 1, item=dict(item))]

    def _done_item(self, item: dict[str, Any], status: str = "completed") -> dict[str, Any]:
        if item["type"] != "reasoning":  # reasoning items carry no status in OpenAI's streams
            item["status"] = status
        return self._event("response.output_item.done", output_index=self.output.index(item), item=dict(item))

    def _reasoning_delta(self, delta: str) -> list[dict[str, Any]]:
        events = self._close_message()
        if self._reasoning is None:
            self._reasoning = {"id": self.ids.item("rs", len(self.output)), "type": "reasoning", "summary": []}
            self._reasoning_text = ""
            events += self._add_item(self._reasoning)
            events.append(
                self._event(
                    "response.reasoning_summary_part.added",
                    **self._at(self._reasoning),
                    summary_index=0,
                    part=summary(""),
                )
            )
        self._reasoning_text += delta
        events.append(
            self._event(
                "response.reasoning_summary_text.delta", **self._at(self._reasoning), summary_index=0, delta=delta
            )
        )
        return events

    def _close_reasoning(self) -> list[dict[str, Any]]:
        item, self._reasoning = self._reasoning, None
        if item is None:
            return []
        text = self._reasoning_text
        item["summary"] = [summary(text)]
        return [
            self._event("response.reasoning_summary_text.done", **self._at(item), summary_index=0, text=text),
            self._event("response.reasoning_summary_part.done", **self._at(item), summary_index=0, part=summary(text)),
            self._done_item(item),
        ]

    def _at(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"item_id": item["id"], "output_index": self.output.index(item)}

    def _open_message(self) -> list[dict[str, Any]]:
        events = self._close_reasoning()
        if self._message is None:
            self._message = message_item(self.ids.item("msg", len(self.output)), [], "in_progress")
            events += self._add_item(self._message)
        return events

    def _open_part(self, part: dict[str, Any]) -> list[dict[str, Any]]:
        assert self._message is not None
        self._message["content"].append(part)
        index = len(self._message["content"]) - 1
        return [
            self._event("response.content_part.added", **self._at(self._message), content_index=index, part=dict(part))
        ]

    def _text_delta(self, delta: str) -> list[dict[str, Any]]:
        events = self._open_message()
        if self._text is None:
            self._text = text_part("")
            events += self._open_part(self._text)
        self._text["text"] += delta
        assert self._message is not None
        events.append(
            self._event(
                "response.output_text.delta",
                **self._at(self._message),
                content_index=self._message["content"].index(self._text),
                delta=delta,
                logprobs=[],
            )
        )
        return events

    def _refusal_delta(self, delta: str) -> list[dict[str, Any]]:
        events = self._open_message()
        if self._refusal is None:
            self._refusal = {"type": "refusal", "refusal": ""}
            events += self._open_part(self._refusal)
        self._refusal["refusal"] += delta
        assert self._message is not None
        events.append(
            self._event(
                "response.refusal.delta",
                **self._at(self._message),
                content_index=self._message["content"].index(self._refusal),
                delta=delta,
            )
        )
        return events

    def _close_message(self, status: str = "completed") -> list[dict[str, Any]]:
        message = self._message
        if message is None:
            return []
        events = []
        where = self._at(message)
        for part in message["content"]:
            index = message["content"].index(part)
            if part["type"] == "output_text":
                events.append(
                    self._event(
                        "response.output_text.done", **where, content_index=index, text=part["text"], logprobs=[]
                    )
                )
            else:
                events.append(
                    self._event("response.refusal.done", **where, content_index=index, refusal=part["refusal"])
                )
            events.append(self._event("response.content_part.done", **where, content_index=index, part=dict(part)))
        events.append(self._done_item(message, status))
        self._message = self._text = self._refusal = None
        return events

    def annotate(self, cite: Callable[[str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """Annotations on the open message's text, which `cite(text)` finds, each with its event."""
        message, part = self._message, self._text
        if message is None or part is None:
            return []
        events = []
        for annotation in cite(part["text"]):
            part["annotations"].append(annotation)
            events.append(
                self._event(
                    "response.output_text.annotation.added",
                    **self._at(message),
                    content_index=message["content"].index(part),
                    annotation_index=len(part["annotations"]) - 1,
                    annotation=annotation,
                )
            )
        return events

    def _tool_call_delta(self, delta: dict[str, Any]) -> list[dict[str, Any]]:
        index = delta.get("index", 0)
        function = delta.get("function") or {}
        events: list[dict[str, Any]] = []
        call = self._calls.get(index)
        if call is None:
            events += self._close_reasoning() + self._close_message()
            call = {
                "id": self.ids.item("fc", len(self.output)),
                "type": "function_call",
                "status": "in_progress",
                "call_id": delta.get("id") or self.ids.item("call", len(self.output)),
                **self._names.call_fields(function.get("name") or ""),
                "arguments": "",
            }
            self._calls[index] = call
            events += self._add_item(call)
        elif function.get("name") and not call["name"]:
            call.update(self._names.call_fields(function["name"]))
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            call["arguments"] += arguments
            events.append(self._event("response.function_call_arguments.delta", **self._at(call), delta=arguments))
        return events

    def _close_calls(self, status: str = "completed") -> list[dict[str, Any]]:
        events = []
        for call in self._calls.values():
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    **self._at(call),
                    name=call["name"],
                    arguments=call["arguments"],
                )
            )
            events.append(self._done_item(call, status))
        self._calls.clear()
        return events

    # -- hosted tools' items (web_search_call, mcp_list_tools, mcp_call), built by the caller ----------
    def open_item(self, item: dict[str, Any], *progress: str) -> list[dict[str, Any]]:
        """Add an item after what is open, with its progress events (`response.web_search_call.searching`, ...)."""
        events = self.start() + self._close_reasoning() + self._close_message()
        events += self._add_item(item)
        return events + self.progress(item, *progress)

    def progress(self, item: dict[str, Any], *kinds: str, **fields: Any) -> list[dict[str, Any]]:
        return [self._event(kind, **self._at(item), **fields) for kind in kinds]

    def close_item(self, item: dict[str, Any], *progress: str) -> list[dict[str, Any]]:
        """The item's last progress events, then `response.output_item.done` with the item as it now is."""
        events = self.progress(item, *progress)
        return [
            *events,
            self._event("response.output_item.done", output_index=self.output.index(item), item=dict(item)),
        ]

    # -- the stream ----------------------------------------------------------------------------
    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The events for one chat.completion.chunk (a usage-only chunk gives none)."""
        events = self.start()
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = as_object(choice.get("delta"))
            if reasoning := reasoning_text(delta):
                events += self._reasoning_delta(reasoning)
            if isinstance(delta.get("content"), str) and delta["content"]:
                events += self._text_delta(delta["content"])
            if isinstance(delta.get("refusal"), str) and delta["refusal"]:
                events += self._refusal_delta(delta["refusal"])
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    events += self._tool_call_delta(call)
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        return events

    def finish(self, usage: Any = None) -> list[dict[str, Any]]:
        """Close what is open; `response.completed` (or `.incomplete`) with usage (else the stream's)."""
        if self._ended:
            return []
        events = self.start()
        status, incomplete = finished(self._finish_reason)
        item_status = "incomplete" if status == "incomplete" else "completed"
        if not self.output:  # an empty reply is still one (empty) message, as OpenAI answers it
            events += self._open_message()
            self._text = text_part("")
            events += self._open_part(self._text)
        events += self._close_reasoning() + self._close_message(item_status) + self._close_calls(item_status)
        self._ended = True
        self.response.update(
            status=status,
            completed_at=self.ids.completed_at if status == "completed" else None,
            incomplete_details=incomplete,
        )
        if (counted := response_usage(usage if usage is not None else self._usage)) is not None:
            self.response["usage"] = counted
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return [*events, self._event(kind, response=self._snapshot())]

    def fail(self, message: str, status: int = 500) -> list[dict[str, Any]]:
        """End with `response.failed`: what was produced so far stays, marked incomplete."""
        if self._ended:
            return []
        events = self.start()
        self._ended = True
        for item in self.output:
            if item.get("status") in ("in_progress", "searching", "calling"):
                item["status"] = "failed" if item["type"] == "web_search_call" else "incomplete"
        if self._reasoning is not None:
            self._reasoning["summary"] = [summary(self._reasoning_text)]
        code = "rate_limit_exceeded" if status == 429 else "invalid_prompt" if 400 <= status < 500 else "server_error"
        self.response.update(status="failed", error={"code": code, "message": message})
        return [*events, self._event("response.failed", response=self._snapshot())]
