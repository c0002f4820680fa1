"""Fallbacks across models: another model answers when the requested one cannot.

Two lists per model (catalogue.Fallback), each tried in order:

- `failure`: when every deployment of the model failed before the first byte (routing gave up);
- `context`: when the request's prompt estimate is larger than the model's context.

A fallback is taken only if the caller could have asked for it by name: it is found with the serving's
`find_model` (gateway.auth.get_model: groups and a key's allowed models), and it must be of the
endpoint's kind, take what the request needs (`Serving.check`) and fit the prompt. Anything else is
skipped, never an error of its own: the caller then gets the requested model's error.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from catalogue.models import Fallback, LanguageModel
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.serving.base import Serving

log = logging.getLogger(__name__)

MODEL_HEADER = "x-chatsite-model"  # the public id of the model that answered


async def _usable(serving: Serving[Any], candidate: LanguageModel, prompt_tokens: int) -> LanguageModel | None:
    """The candidate as the caller may use it for this request, or None (serving.model is left as it was)."""
    from gateway.serving.base import check_kind

    before = serving.model
    try:
        model = await serving.find_model(candidate.public_id)
        check_kind(model, serving.kind)
        serving.model = model  # check() reads the model it checks against
        serving.check()
    except GatewayError as exc:
        log.info("fallback %s skipped: %s", candidate.public_id, exc.code)
        return None
    finally:
        serving.model = before
    return model if prompt_tokens <= model.context_length else None


async def pick(
    serving: Serving[Any], candidates: list[LanguageModel], prompt_tokens: int, tried: set[int]
) -> LanguageModel | None:
    """The first of `candidates` not yet tried that the caller may use and that fits the prompt."""
    for candidate in candidates:
        if candidate.pk in tried:
            continue
        tried.add(candidate.pk)
        model = await _usable(serving, candidate, prompt_tokens)
        if model is not None:
            return model
    return None


async def fitting(serving: Serving[Any], prompt_tokens: int, tried: set[int]) -> LanguageModel | None:
    """A context-window fallback when the prompt does not fit the model; None when it fits or none does."""
    model = serving.model
    if prompt_tokens <= model.context_length:
        return None
    return await pick(serving, model.fallbacks_for(Fallback.Reason.CONTEXT), prompt_tokens, tried)


async def after_failure(
    serving: Serving[Any], requested: LanguageModel, prompt_tokens: int, tried: set[int]
) -> LanguageModel | None:
    """The next model to try once every deployment of the current one failed: its own failure
    fallbacks, then the requested model's."""
    current = serving.model
    candidates = current.fallbacks_for(Fallback.Reason.FAILURE)
    if current.pk != requested.pk:
        candidates += requested.fallbacks_for(Fallback.Reason.FAILURE)
    return await pick(serving, candidates, prompt_tokens, tried)
