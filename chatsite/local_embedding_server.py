"""The bundled embedding model's OpenAI-compatible server: `POST /v1/embeddings` and `GET /v1/models` on loopback.

Run as `python -m chatsite.local_embedding_server --port N` (chatsite.local_embedding does). The model is
WordLlama's `l2_supercat` at 256 dimensions, whose weights and tokenizer ship inside the `wordllama`
package: nothing is downloaded. WordLlama's own loader looks for the bundled tokenizer in a folder of
another name and would fetch it from the network, so the files are opened here by their paths. Static
word embeddings, averaged and normalized: thousands of passages a second on one core, far below a
transformer's quality (the README gives the retrieval bench's figures). Needs no Django.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODEL_ID = "wordllama-256"
DIMENSIONS = 256
MAX_INPUTS = 2048
MAX_BODY_BYTES = 32 * 1024 * 1024


def load_model() -> Any:
    """WordLlama's inference object over the package's bundled files; ImportError/OSError if they are missing."""
    import wordllama
    from safetensors import safe_open
    from wordllama import WordLlama
    from wordllama.inference import WordLlamaInference

    root = Path(wordllama.__file__).parent
    tokenizer = WordLlama.load_tokenizer(root / "tokenizers" / "l2_supercat_tokenizer_config.json")
    with safe_open(str(root / "weights" / f"l2_supercat_{DIMENSIONS}.safetensors"), framework="np") as weights:
        embedding = weights.get_tensor("embedding.weight")
    return WordLlamaInference(embedding, tokenizer, binary=False)


def embed(model: Any, texts: list[str]) -> tuple[list[list[float]], int]:
    """Unit vectors for the texts, and their token count."""
    vectors = model.embed(texts, norm=True)
    tokens = sum(len(encoding.ids) for encoding in model.tokenizer.encode_batch(texts))
    return [[round(float(x), 6) for x in row] for row in vectors], tokens


def _inputs(body: Any) -> list[str] | None:
    value = body.get("input") if isinstance(body, dict) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and 0 < len(value) <= MAX_INPUTS and all(isinstance(v, str) for v in value):
        return value
    return None


def handler(model: Any) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()  # the tokenizer's batch encoding is not documented as thread-safe

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._answer(status, {"error": {"message": message, "type": "invalid_request_error"}})

        def do_GET(self) -> None:
            if self.path.rstrip("/") != "/v1/models":
                return self._error(404, "Not found.")
            card = {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "dleemiller"}
            self._answer(200, {"object": "list", "data": [card]})

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/embeddings":
                return self._error(404, "Not found.")
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY_BYTES:
                return self._error(413, "The body is empty or too large.")
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                return self._error(400, "The body is not JSON.")
            texts = _inputs(body)
            if texts is None:
                return self._error(400, f"'input' must be a string or a list of 1 to {MAX_INPUTS} strings.")
            with lock:
                vectors, tokens = embed(model, texts)
            data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
            usage = {"prompt_tokens": tokens, "total_tokens": tokens}
            self._answer(200, {"object": "list", "data": data, "model": MODEL_ID, "usage": usage})

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: one line per request would drown the log during ingestion."""

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    model = load_model()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(model))
    print(f"serving {MODEL_ID} on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
