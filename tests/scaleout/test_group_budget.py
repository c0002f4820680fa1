"""A group's budget, shared by two members whose requests land on two workers, trips once for both."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from accounts import groups
from accounts.keys import create_key
from accounts.models import User
from catalogue.models import LanguageModel
from tests.fake_upstream import FakeUpstream, Reply
from tests.scaleout.conftest import Cluster
from tests.scaleout.test_two_workers import MODEL, _post, model, spent_once_written  # noqa: F401
from usage.models import Limit, UsageRecord

pytestmark = pytest.mark.timeout(120)


def test_two_members_on_two_workers_overshoot_their_groups_budget_by_at_most_one_request_per_worker(
    shared: Cluster,
    model: LanguageModel,  # noqa: F811
    alice: User,
    bob: User,
    fake_upstream: FakeUpstream,
) -> None:
    team, _ = groups.add_group("team")
    for member in (alice, bob):
        groups.add_member(team, member, default=True)
    Limit.objects.create(group=team, budget_usd=Decimal("1.00"), budget_period="day")
    UsageRecord.objects.create(user=bob, group=team, model_public_id=MODEL, cost=Decimal("0.90"), source="chat")
    fake_upstream.default = Reply(content=" ".join(["w"] * 20), chunks=20)
    one_request = model.cost(10, 20)  # the largest a request may cost: its reservation, $0.03
    keys = [create_key(alice, "a")[1], create_key(bob, "b")[1]]

    calls = [(server, keys[i % 2]) for i, server in enumerate([shared.a, shared.b] * 12)]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda call: _post(call[0], call[1], {"max_tokens": 20}), calls))
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 429} and statuses.count(200) >= 1
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 429} == {"insufficient_quota"}

    spent = spent_once_written(statuses.count(200) + 1, group=team)  # + bob's earlier row
    assert Decimal("1.00") - one_request < spent <= Decimal("1.00") + one_request

    # Spending may have stopped just short of the budget (admitted while below it): the next
    # requests take it over; then it is tripped once, for both members.
    for _ in range(3):
        if _post(shared.a, keys[0], {"max_tokens": 20}).status_code == 429:
            break
    for server, secret in ((shared.a, keys[0]), (shared.b, keys[1])):
        assert _post(server, secret).json()["error"]["code"] == "insufficient_quota"
