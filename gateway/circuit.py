"""A deployment's circuit: its state, and the pure rule of what a failure does to it (both of
gateway.health's stores apply it: in this process, or as a Redis script)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from gateway.errors import UpstreamFault


@dataclass(frozen=True)
class State:
    failures: int = 0  # consecutive failures since the last success
    trips: int = 0  # trips since the last success (the cooldown doubles with each)
    cooling_until: float = 0.0  # epoch seconds; the circuit is open until then
    retry_after_until: float = 0.0  # epoch seconds; the upstream asked us to wait until then
    unreachable: bool = False  # the last trip was a host that could not be reached (worth probing)

    def available_at(self) -> float:
        """When this deployment may be tried again (now or earlier: it may)."""
        return max(self.cooling_until, self.retry_after_until)

    def label(self, now: float) -> str:
        if self.available_at() > now:
            return "cooling down"
        return "half-open" if self.trips else "healthy"


HEALTHY = State()


def cooldown(trips: int) -> float:
    base = float(settings.ROUTING_COOLDOWN_SECONDS)
    return min(base * 2 ** max(trips - 1, 0), float(settings.ROUTING_COOLDOWN_MAX_SECONDS))


def after_failure(state: State, fault: UpstreamFault | None, now: float) -> State:
    """The pure rule: what a failure does to a state (both stores apply it)."""
    failures = state.failures + 1
    trips, cooling_until = state.trips, state.cooling_until
    half_open = trips > 0 and cooling_until <= now
    down = fault is not None and fault.down
    unreachable = state.unreachable
    if down or half_open or failures >= int(settings.ROUTING_FAILURES_TO_TRIP):
        trips += 1
        cooling_until = now + cooldown(trips)
        failures = 0
        unreachable = down
    retry_until = state.retry_after_until
    if fault is not None and fault.retry_after is not None:
        retry_until = max(retry_until, now + fault.retry_after)
    return State(failures, trips, cooling_until, retry_until, unreachable)
