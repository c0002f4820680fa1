"""Routing by measured time to first byte: the moving average's rule, and the choice it makes.

A model whose `routing` is "latency" is served, within its best priority, by the deployment whose
time to first byte has been shortest: each successful attempt's time (to the first event of a
stream, to the answer otherwise) is folded into an exponentially weighted moving average that
gateway.health keeps beside the circuit state, shared by every worker. Failures are not measured:
the circuit deals with them.

The choice among a tier (deployments of one priority, let through by their circuits, with room):

- a deployment never measured goes first, so each one gets measured;
- every `EXPLORE_EVERY`th choice of a model goes to the least recently measured one, so a
  deployment that was slow once is measured again now and then (deterministic: no randomness);
- otherwise the lowest average; ties, as the priority strategy spreads (fewest in flight per weight).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from catalogue.models import Deployment

ALPHA = 0.3  # the newest measurement's weight in the average
EXPLORE_EVERY = 20  # one choice in this many re-measures the least recently measured deployment


@dataclass(frozen=True)
class Latency:
    seconds: float  # the moving average of the time to first byte
    count: int  # measurements folded into it
    at: float  # epoch seconds (core.clock) of the latest one

    def later(self, other: Latency | None) -> Latency:
        """Whichever of two workers' records is the newer (the one the shared average continues from)."""
        if other is None or (self.at, self.count) >= (other.at, other.count):
            return self
        return other


def folded(previous: Latency | None, seconds: float, now: float) -> Latency:
    """The average once `seconds` is measured at `now` (the first measurement is the average)."""
    if previous is None:
        return Latency(seconds, 1, now)
    return Latency(previous.seconds + ALPHA * (seconds - previous.seconds), previous.count + 1, now)


# Latency-routed choices per model in this process: every EXPLORE_EVERYth one explores.
_turns: dict[int, int] = {}


def choose(
    model_id: int,
    tier: list[Deployment],
    measured: dict[int, Latency],
    spread: Callable[[list[Deployment]], Deployment],
) -> Deployment:
    """The deployment of `tier` to try (see the module's docstring); `spread` breaks ties."""
    unmeasured = [d for d in tier if d.pk not in measured]
    if unmeasured:
        return spread(unmeasured)
    if len(tier) > 1:
        turn = _turns[model_id] = _turns.get(model_id, 0) + 1
        if turn % EXPLORE_EVERY == 0:
            return min(tier, key=lambda d: (measured[d.pk].at, d.pk))
    best = min(measured[d.pk].seconds for d in tier)
    return spread([d for d in tier if measured[d.pk].seconds == best])


def forget_turns() -> None:
    """Start every model's count of choices again (tests)."""
    _turns.clear()
