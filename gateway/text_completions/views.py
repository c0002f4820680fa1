"""POST /v1/completions."""

from gateway.endpoint import serving_endpoint
from gateway.text_completions.serving import TextServing
from gateway.wire import DATA_ONLY

completions = serving_endpoint(TextServing, DATA_ONLY)
