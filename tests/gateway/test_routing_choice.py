"""Which deployment routing chooses: priorities, weights, requests in flight, concurrency caps."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from asgiref.sync import sync_to_async

from catalogue.models import Deployment, LanguageModel, Provider
from gateway import routing

pytestmark = pytest.mark.django_db(transaction=True)


def _model(*routes: dict[str, object]) -> LanguageModel:
    first = Provider.objects.create(name="p0", base_url="http://127.0.0.1:9/v1")
    model = LanguageModel.objects.create(public_id="m", provider=first, upstream_model="u0")
    primary = Deployment.objects.get(model=model, primary=True)
    for name, value in routes[0].items():
        setattr(primary, name, value)
    primary.save()
    for number, extra in enumerate(routes[1:], start=1):
        provider = Provider.objects.create(name=f"p{number}", base_url="http://127.0.0.1:9/v1")
        Deployment.objects.create(model=model, provider=provider, upstream_model=f"u{number}", **extra)
    return LanguageModel.objects.usable().filter(pk=model.pk).first() or model


async def _choose(model: LanguageModel) -> str:
    attempts = routing.Attempts(model)
    deployment = await attempts.next()
    attempts.release()
    return deployment.upstream_model


async def test_weights_3_to_1_split_1000_requests_3_to_1() -> None:
    model = await sync_to_async(_model)({"weight": 3}, {"weight": 1})
    counts = Counter([await _choose(model) for _ in range(1000)])
    assert counts == {"u0": 750, "u1": 250}


async def test_the_best_priority_takes_everything_while_it_is_available() -> None:
    model = await sync_to_async(_model)({"priority": 1, "weight": 9}, {"priority": 0})
    assert {await _choose(model) for _ in range(20)} == {"u1"}


async def test_fewest_in_flight_per_unit_of_weight_comes_first() -> None:
    model = await sync_to_async(_model)({}, {})
    held = routing.Attempts(model)
    busy = (await held.next()).upstream_model
    other = {"u0": "u1", "u1": "u0"}[busy]
    assert [await _choose(model) for _ in range(5)] == [other] * 5
    held.release()


async def test_a_deployment_at_its_cap_is_skipped_while_another_has_room_and_requests_wait_for_a_slot() -> None:
    model = await sync_to_async(_model)({"max_concurrent": 1}, {"priority": 1, "max_concurrent": 1})
    first, second = routing.Attempts(model), routing.Attempts(model)
    assert (await first.next()).upstream_model == "u0"
    assert (await second.next()).upstream_model == "u1", "the better one is full: the other has room"
    third = routing.Attempts(model)
    waiting = asyncio.ensure_future(third.next())
    await asyncio.sleep(0.05)
    assert not waiting.done(), "both are full: the request waits for a slot"
    second.release()
    assert (await asyncio.wait_for(waiting, 10)).upstream_model == "u1"
    first.release()
    third.release()


async def test_a_model_whose_deployments_are_all_disabled_is_not_usable() -> None:
    model = await sync_to_async(_model)({"enabled": False}, {"enabled": False})
    assert not await LanguageModel.objects.usable().filter(pk=model.pk).aexists()
