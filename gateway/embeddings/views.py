"""POST /v1/embeddings."""

from gateway.embeddings.serving import EmbeddingServing
from gateway.endpoint import serving_endpoint

embeddings = serving_endpoint(EmbeddingServing, None)
