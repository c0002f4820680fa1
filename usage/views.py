"""A group's usage, for its managers: the requests billed to the group, by day, model and user, and a CSV;
usage analytics from the daily rollup, across users for staff and restricted to a group for its managers."""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.groups import managed_group
from accounts.models import User
from core.clock import clock
from core.inputs import BadInput, day_range
from usage import analytics, queries

# The longest range a page or CSV covers, in days.
MAX_DAYS = 400


class _Echo:
    def write(self, value: str) -> str:
        return value


@never_cache
@login_required
@require_GET
def group_usage(request: HttpRequest, group_id: int) -> HttpResponse:
    """Only the group's managers see it; anyone else gets 404, as for a group that does not exist."""
    group = managed_group(cast(User, request.user), group_id)  # signed in: login_required
    context = {
        "group": group,
        "days": queries.CHART_DAYS,
        "chart": queries.daily_tokens_by_model(group_id=group.pk),
        "by_user": queries.group_by_user(group.pk),
        "budget": queries.group_budget(group.pk),
    }
    return render(request, "usage/group_usage.html", context)


@never_cache
@login_required
@require_GET
def group_usage_csv(request: HttpRequest, group_id: int) -> StreamingHttpResponse:
    group = managed_group(cast(User, request.user), group_id)
    writer = csv.writer(_Echo())
    lines = (writer.writerow(row) for row in [queries.CSV_COLUMNS, *queries.group_daily_rows(group.pk)])
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="group-{group.pk}-usage.csv"'
    return response


@dataclass(frozen=True)
class _Page:
    title: str
    csv_url: str
    back_url: str
    back_label: str


def _scope(request: HttpRequest, group_id: int | None) -> tuple[analytics.Scope | None, str | None]:
    """The date range asked for, or the readable reason it was refused."""
    today = clock().now().date()
    try:
        first, last = day_range(
            request.GET.get("start", ""),
            request.GET.get("end", ""),
            today=today,
            default_days=queries.CHART_DAYS,
            max_days=MAX_DAYS,
        )
    except BadInput as error:
        return None, str(error)
    return analytics.Scope(first, last, group_id), None


def _analytics_page(request: HttpRequest, group_id: int | None, page: _Page) -> HttpResponse:
    scope, error = _scope(request, group_id)
    context: dict[str, object] = {"page": page, "error": error, "start": request.GET.get("start", "")}
    context["end"] = request.GET.get("end", "")
    if scope is None:
        return render(request, "usage/analytics.html", context, status=400)
    analytics.refresh()
    context.update(
        scope=scope,
        query=urlencode({"start": scope.first.isoformat(), "end": scope.last.isoformat()}),
        start=scope.first.isoformat(),
        end=scope.last.isoformat(),
        data=analytics.report(scope),
        top_users=analytics.top_users(scope),
        slowest=analytics.slowest_deployments(scope),
    )
    return render(request, "usage/analytics.html", context)


def _analytics_csv(request: HttpRequest, group_id: int | None, filename: str) -> HttpResponseBase:
    scope, error = _scope(request, group_id)
    if scope is None:
        return HttpResponse(error, status=400, content_type="text/plain; charset=utf-8")
    analytics.refresh()
    writer = csv.writer(_Echo())
    lines = (writer.writerow(row) for row in itertools.chain([analytics.CSV_COLUMNS], analytics.csv_rows(scope)))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}-{scope.first}-{scope.last}.csv"'
    return response


def _staff(user: User) -> None:
    """Analytics across users are for staff; to anyone else the page does not exist."""
    if not user.is_staff:
        raise Http404


@never_cache
@login_required
@require_GET
def site_analytics(request: HttpRequest) -> HttpResponse:
    _staff(cast(User, request.user))
    page = _Page("Usage analytics", reverse("analytics_csv"), reverse("admin:index"), "Administration")
    return _analytics_page(request, None, page)


@never_cache
@login_required
@require_GET
def site_analytics_csv(request: HttpRequest) -> HttpResponseBase:
    _staff(cast(User, request.user))
    return _analytics_csv(request, None, "usage")


@never_cache
@login_required
@require_GET
def group_analytics(request: HttpRequest, group_id: int) -> HttpResponse:
    """The analytics page restricted to what was billed to the group; its managers only, 404 to anyone else."""
    group = managed_group(cast(User, request.user), group_id)
    page = _Page(
        f"Usage analytics: {group.name}",
        reverse("group_analytics_csv", args=[group.pk]),
        reverse("group_usage", args=[group.pk]),
        f"{group.name}'s usage",
    )
    return _analytics_page(request, group.pk, page)


@never_cache
@login_required
@require_GET
def group_analytics_csv(request: HttpRequest, group_id: int) -> HttpResponseBase:
    group = managed_group(cast(User, request.user), group_id)
    return _analytics_csv(request, group.pk, f"group-{group.pk}-usage")
