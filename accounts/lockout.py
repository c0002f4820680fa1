"""Who a run of failed sign-ins locks out, and how a busy address is slowed down instead.

Locks (django-axes, `LockoutHandler`): LOGIN_FAILURE_LIMIT failures of one account from one address
lock that pair (someone guessing a password from where they sit); LOGIN_ACCOUNT_FAILURE_LIMIT, a
higher bar, failures of one account from anywhere lock the account (guessing spread over many
addresses). An address alone is never locked: everyone behind one NAT or proxy shares it, and a
lock on it would let anyone there keep all the others out with a few requests.

Slowdown (`slowed`): each sign-in from an address with more than LOGIN_SLOWDOWN_AFTER recent failures
(any accounts') waits first, a second doubling with every further failure, up to
LOGIN_SLOWDOWN_MAX_SECONDS; it is then answered as usual, so a correct password still gets in.
The wait is an asyncio sleep on the clock (tests set it), which holds no thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from asgiref.sync import sync_to_async
from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponseBase

from accounts.auth import client_ip
from core.clock import clock


def _failures(attempts: QuerySet[AccessAttempt]) -> int:
    return int(attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0)


class LockoutHandler(AxesDatabaseHandler):
    """AXES_LOCKOUT_PARAMETERS is [(username, address), username]: the pair is held to AXES_FAILURE_LIMIT,
    the username alone to its own LOGIN_ACCOUNT_FAILURE_LIMIT."""

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        pair, account = (_failures(attempts) for attempts in self.get_user_attempts(request, credentials))
        # axes holds this one count to AXES_FAILURE_LIMIT: the account's own count once it reached its bar
        # (never below AXES_FAILURE_LIMIT), else the pair's.
        return account if account >= settings.LOGIN_ACCOUNT_FAILURE_LIMIT else pair


def address_failures(address: str | None) -> int:
    """Failed sign-ins from `address` (any accounts) within the lockout's cool-off."""
    if not address:
        return 0
    since = clock().now() - settings.AXES_COOLOFF_TIME
    return _failures(AccessAttempt.objects.filter(ip_address=address, attempt_time__gte=since))


def delay(failures: int) -> float:
    """Seconds a sign-in waits after `failures` recent failures from its address."""
    beyond = failures - settings.LOGIN_SLOWDOWN_AFTER
    if beyond <= 0:
        return 0.0
    return float(min(2 ** min(beyond - 1, 30), settings.LOGIN_SLOWDOWN_MAX_SECONDS))


View = Callable[..., HttpResponseBase]


def slowed(view: View) -> Callable[..., Coroutine[Any, Any, HttpResponseBase]]:
    """`view` (a sign-in page), its POSTs first waiting out their address's delay."""
    run = sync_to_async(view)

    @functools.wraps(view)
    async def slowed_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "POST":
            wait = delay(await sync_to_async(address_failures)(client_ip(request)))
            if wait:
                await clock().sleep(wait)
        return await run(request, *args, **kwargs)

    return slowed_view
