"""POST /v1/completions: models of kind `text`, over the serving core.

The request is OpenAI's CreateCompletionRequest (gateway.text_completions.protocol); it goes to the
deployment's `/completions` as the client sent it but for the upstream's model name, our end user
(hashed), routing fields (dropped) and the output cap, always sent as `max_tokens` (the one name
the Completions API has).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from catalogue.models import Deployment, LanguageModel
from gateway import upstream
from gateway.chat_completions.serving import ChunkRelay, answer_usage, choices_of, own_answer
from gateway.errors import GatewayError
from gateway.serving.base import Opened, Serving
from gateway.serving.bodies import sent_body
from gateway.text_completions.protocol import CreateCompletionRequest, parse_completion_request
from usage.tokens import Usage, estimate_input_tokens

PATH = "/completions"


def _text_bytes(choices: Any) -> int:
    return sum(len(str(choice.get("text") or "").encode()) for choice in choices or () if isinstance(choice, dict))


@dataclass
class TextRelay(ChunkRelay):
    """A text completion's stream events as our client's chunks."""

    OBJECT: ClassVar[str] = "text_completion"
    ID_PREFIX: ClassVar[str] = "cmpl-"

    def chunks(self, data: str) -> list[dict[str, Any]]:
        chunk = self.parse(data)
        choices = self.choices_of(chunk)
        if not choices:
            return []
        for choice in choices:
            choice.setdefault("logprobs", None)
            choice.setdefault("finish_reason", None)
        self.completion_bytes += _text_bytes(choices)
        return [chunk]


class TextServing(Serving[CreateCompletionRequest]):
    PROTOCOL = CreateCompletionRequest
    kind = LanguageModel.Kind.TEXT

    def parse(self, body: dict[str, Any]) -> CreateCompletionRequest:
        return parse_completion_request(body)

    def estimate(self) -> tuple[int, int]:
        self.cap = self.request.output_cap(self.model.max_output_tokens)
        return estimate_input_tokens(self.request.prompts()), self.cap * self.request.choices()

    def _body(self, deployment: Deployment, target: upstream.Target, stream: bool) -> bytes:
        if target.anthropic or target.gemini:
            raise GatewayError(
                400, f"{target.api_name} has no text completions here.", param="model", code="model_not_supported"
            )
        caller = self.call.caller
        return sent_body(
            self.call.body, deployment, caller, stream, drop=("max_completion_tokens",), max_tokens=self.cap
        )

    async def answer_from(self, deployment: Deployment, target: upstream.Target) -> tuple[dict[str, Any], Usage]:
        payload = await upstream.post_json(target, PATH, self._body(deployment, target, False))
        choices_of(payload, target)
        own_answer(payload, self.model.public_id, "text_completion", "cmpl-")
        return payload, answer_usage(self.call, payload, _text_bytes(payload["choices"]))

    def relay_for(self, deployment: Deployment, target: upstream.Target) -> Opened:
        relay = TextRelay(self.model.public_id, self.request.wants_usage_chunk(), target)
        return relay, PATH, self._body(deployment, target, True), {}
