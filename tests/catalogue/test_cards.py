"""A model's card, the one /v1/models and the chat page's model picker both show."""

from __future__ import annotations

from decimal import Decimal

import pytest

from catalogue.cards import model_card
from catalogue.models import LanguageModel, Provider

pytestmark = pytest.mark.django_db


def test_it_tells_a_models_description_context_prices_and_its_own_capabilities() -> None:
    provider = Provider.objects.create(name="up", base_url="http://127.0.0.1:9/v1")
    model = LanguageModel.objects.create(
        public_id="team/chat",
        provider=provider,
        upstream_model="m",
        description="Small and quick",
        context_length=4096,
        input_price_per_million=Decimal("0.150000"),
        output_price_per_million=Decimal("100.000000"),
        vision=True,
        tools=False,
    )
    card = model_card(model)
    assert card["description"] == "Small and quick"
    assert (card["context_length"], card["max_output_tokens"]) == (4096, model.max_output_tokens)
    assert card["pricing"] == {"input_per_million": "0.15", "output_per_million": "100"}  # never "1E+2"
    assert card["capabilities"] == {"vision": True, "tools": False, "reasoning": False, "json_output": True}
