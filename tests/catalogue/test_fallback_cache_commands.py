"""`models fallback` and `models cache`: idempotent, one-line errors."""

from __future__ import annotations

import pytest
from django.core.management import CommandError

from catalogue.models import Fallback, LanguageModel, Provider
from tests.catalogue.test_commands import run

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue() -> list[LanguageModel]:
    provider = Provider.objects.create(name="p", base_url="https://x.test/v1")
    return [
        LanguageModel.objects.create(public_id=f"acme/m{i}", provider=provider, upstream_model="m") for i in range(3)
    ]


def _listed(model: LanguageModel, reason: str) -> list[str]:
    return [f.to.public_id for f in model.fallbacks.filter(reason=reason).order_by("position")]


def test_models_fallback_sets_the_ordered_list_and_replaces_it(catalogue: list[LanguageModel]) -> None:
    out = run("models", "fallback", "acme/m0", "--to", "acme/m2,acme/m1")
    assert out.strip() == "model acme/m0 fallbacks: acme/m2, acme/m1"
    assert _listed(catalogue[0], Fallback.Reason.FAILURE) == ["acme/m2", "acme/m1"]
    run("models", "fallback", "acme/m0", "--to", "acme/m1")
    run("models", "fallback", "acme/m0", "--to", "acme/m1")
    assert _listed(catalogue[0], Fallback.Reason.FAILURE) == ["acme/m1"]
    run("models", "fallback", "acme/m0", "--context", "--to", "acme/m2")
    assert _listed(catalogue[0], Fallback.Reason.CONTEXT) == ["acme/m2"]
    assert _listed(catalogue[0], Fallback.Reason.FAILURE) == ["acme/m1"], "the other list is left alone"
    assert "none" in run("models", "fallback", "acme/m0", "--none")
    assert _listed(catalogue[0], Fallback.Reason.FAILURE) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["acme/nope", "--to", "acme/m1"], "no model 'acme/nope'"),
        (["acme/m0", "--to", "acme/m1,acme/nope"], "no model 'acme/nope'"),
        (["acme/m0", "--to", "acme/m0"], "its own fallback"),
        (["acme/m0", "--to", " , "], "at least one model"),
    ],
)
def test_models_fallback_refuses_bad_input(catalogue: list[LanguageModel], args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("models", "fallback", *args)
    assert not Fallback.objects.exists()


def test_models_cache_turns_the_cache_on_and_off(catalogue: list[LanguageModel]) -> None:
    assert "cached for 600 s, per user" in run("models", "cache", "acme/m0", "--ttl", "600")
    assert "shared by every user" in run("models", "cache", "acme/m0", "--ttl", "60", "--shared")
    model = LanguageModel.objects.get(public_id="acme/m0")
    assert (model.cache_ttl_seconds, model.cache_shared, model.cache_unsafe) == (60, True, False)
    assert model.cache_hits_limited, "hits count against rate limits unless the operator says otherwise"
    assert "hits are free of rate limits" in run("models", "cache", "acme/m0", "--ttl", "60", "--no-count-hits")
    assert not LanguageModel.objects.get(public_id="acme/m0").cache_hits_limited
    assert "hits count against rate limits" in run("models", "cache", "acme/m0", "--ttl", "60", "--count-hits")
    assert "not cached" in run("models", "cache", "acme/m0", "--off")
    assert LanguageModel.objects.get(public_id="acme/m0").cache_ttl_seconds == 0
    with pytest.raises(CommandError, match="no model"):
        run("models", "cache", "acme/nope", "--off")
    with pytest.raises(CommandError):
        run("models", "cache", "acme/m0", "--ttl", "0")
