"""A group's usage, for its managers: the requests billed to the group, by day, model and user, and a CSV."""

from __future__ import annotations

import csv
from typing import cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.groups import managed_group
from accounts.models import User
from usage import queries


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
