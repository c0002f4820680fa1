"""A model's card: what it is and can do, as /v1/models and the chat page's model picker show it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from catalogue.models import LanguageModel


def plain(amount: Decimal) -> str:
    """12.50 as "12.5" and 100 as "100" (normalize() alone would say "1E+2")."""
    return format(amount.normalize(), "f")


def per_thousand(price_per_million: Decimal) -> str:
    """A price per million tokens as dollars per thousand: 0.3 as "$0.0003"."""
    return "$" + plain(price_per_million / 1000)


def readable_pricing(model: LanguageModel) -> str:
    """The model's prices as one readable string: "$0.0003 / 1k tokens", or input and output apart."""
    given, taken = model.input_price_per_million, model.output_price_per_million
    if not given and not taken:
        return "free"
    if given == taken:
        return f"{per_thousand(given)} / 1k tokens"
    return f"{per_thousand(given)} / 1k input tokens, {per_thousand(taken)} / 1k output tokens"


def model_card(model: LanguageModel) -> dict[str, Any]:
    """A Model object: OpenAI's fields, then the catalogue's (its capabilities are its own flags), with the
    fields other hosted services' SDK users read (`name`, `max_context_length`, `creator_logo_url`,
    `censorship`, `public_endpoint_pricing`)."""
    return {
        "id": model.public_id,
        "object": "model",
        "created": int(model.created_at.timestamp()),
        "owned_by": model.owned_by or model.provider.name,
        "context_length": model.context_length,
        "max_output_tokens": model.max_output_tokens,
        # Ours: what the model is and can do, as the catalogues of hosted services publish it.
        "kind": model.kind,
        "is_chat": model.is_chat,
        "is_text": model.is_text,
        "capabilities": model.capabilities,
        "description": model.description,
        "category": model.category,
        "creator": model.creator,
        "license_name": model.license_name,
        "license_url": model.license_url,
        "docs_url": model.docs_url,
        "prompt_guide_url": model.prompt_guide_url,
        "name": model.display_name or model.public_id,
        "max_context_length": model.context_length,
        "creator_logo_url": model.creator_logo_url,
        "censorship": model.censorship,
        "public_endpoint_pricing": readable_pricing(model),
        # Strings: a price is a decimal, and JSON numbers would round it.
        "pricing": {
            "input_per_million": plain(model.input_price_per_million),
            "output_per_million": plain(model.output_price_per_million),
        },
    }
