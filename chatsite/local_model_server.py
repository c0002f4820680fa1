"""llama-cpp-python's OpenAI-compatible server, plus the token usage of streamed chat completions.

Run as `python -m chatsite.local_model_server` with llama_cpp.server's own arguments (chatsite.local_model does).
llama-cpp-python (0.3) ignores `stream_options.include_usage`: its streams carry no usage, so the gateway would
have to estimate what every browser chat costs. This adds the real figures as OpenAI does, in a last chunk
with `choices: []`, counted exactly as llama-cpp-python counts them for a non-streamed answer: the prompt's
tokens as handed to `generate`, and the tokens generated short of the end-of-generation token.
Our gateway is this server's only client and always asks for usage, so the chunk is always sent.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import llama_cpp
from llama_cpp.server.__main__ import main

_USAGE = "_chatsite_usage"


def _counting_generate(generate: Any) -> Any:
    @functools.wraps(generate)
    def wrapper(self: llama_cpp.Llama, tokens: Any, *args: Any, **kwargs: Any) -> Iterator[int]:
        usage = {"prompt_tokens": len(tokens), "completion_tokens": 0}
        # The server answers one request at a time (its lock), so one slot per model is enough.
        setattr(self, _USAGE, usage)
        for token in generate(self, tokens, *args, **kwargs):
            # The caller stops at the end-of-generation token without counting it.
            if not llama_cpp.llama_vocab_is_eog(self._model.vocab, token):
                usage["completion_tokens"] += 1
            yield token

    return wrapper


def _with_usage(self: llama_cpp.Llama, chunks: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    setattr(self, _USAGE, None)
    last: dict[str, Any] | None = None
    for chunk in chunks:
        last = chunk
        yield chunk
    usage = getattr(self, _USAGE, None)
    if last is None or usage is None:
        return
    yield {
        "id": last["id"],
        "object": "chat.completion.chunk",
        "created": last["created"],
        "model": last["model"],
        "choices": [],
        "usage": {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]},
    }


def _streams_usage(create_chat_completion: Any) -> Any:
    @functools.wraps(create_chat_completion)
    def wrapper(self: llama_cpp.Llama, *args: Any, **kwargs: Any) -> Any:
        result = create_chat_completion(self, *args, **kwargs)
        if kwargs.get("stream") and not isinstance(result, dict):
            return _with_usage(self, result)
        return result

    return wrapper


def install() -> None:
    llama_cpp.Llama.generate = _counting_generate(llama_cpp.Llama.generate)  # type: ignore[method-assign]
    llama_cpp.Llama.create_chat_completion = _streams_usage(  # type: ignore[method-assign]
        llama_cpp.Llama.create_chat_completion
    )


if __name__ == "__main__":
    install()
    main()
