"""A model's card: what it is and can do, as /v1/models and the chat page's model picker show it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from catalogue.models import LanguageModel


def plain(amount: Decimal) -> str:
    """12.50 as "12.5" and 100 as "100" (normalize() alone would say "1E+2")."""
    return format(amount.normalize(), "f")


def model_card(model: LanguageModel) -> dict[str, Any]:
    """A Model object: OpenAI's fields, then the catalogue's (its capabilities are its own flags)."""
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
        # Strings: a price is a decimal, and JSON numbers would round it.
        "pricing": {
            "input_per_million": plain(model.input_price_per_million),
            "output_per_million": plain(model.output_price_per_million),
        },
    }
