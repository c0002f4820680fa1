"""The REST API of a user's own usage (/api/usage/...), read from the ledger as the profile shows it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from core.inputs import BadInput, query_int
from core.rest import Private
from usage import queries

MAX_DAYS = 366


class TotalsSerializer(serializers.Serializer[Any]):
    requests = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=20, decimal_places=8, help_text="USD")


class SummarySerializer(serializers.Serializer[Any]):
    api = TotalsSerializer(help_text="Calls to /v1 with API keys.")
    chat = TotalsSerializer(help_text="Chats in the browser.")
    total = TotalsSerializer()


class UsageSerializer(serializers.Serializer[Any]):
    days = serializers.IntegerField(help_text="The length of the recent window.")
    recent = SummarySerializer(help_text="The last `days` days, today included (UTC).")
    all_time = SummarySerializer()


class SeriesSerializer(serializers.Serializer[Any]):
    model = serializers.CharField()
    tokens = serializers.ListField(child=serializers.IntegerField(), help_text="One value per label.")


class SourceSeriesSerializer(serializers.Serializer[Any]):
    # A declared field named like Field.source: DRF takes it out of the class, mypy cannot tell.
    source = serializers.ChoiceField(choices=["api", "chat"])  # type: ignore[assignment]
    tokens = serializers.ListField(child=serializers.IntegerField())


class DailySerializer(serializers.Serializer[Any]):
    days = serializers.IntegerField()
    labels = serializers.ListField(child=serializers.DateField(), help_text="The days, oldest first (UTC).")
    models = SeriesSerializer(many=True, help_text="Tokens per day, one series per model.")
    sources = SourceSeriesSerializer(many=True, help_text="Tokens per day, API and browser chat apart.")
    requests = serializers.ListField(child=serializers.IntegerField())
    cost = serializers.ListField(child=serializers.DecimalField(max_digits=20, decimal_places=8))
    totals = SummarySerializer(help_text="Totals over the window.")


DAYS = OpenApiParameter("days", int, description=f"How many days back, today included (1–{MAX_DAYS}; default 30).")


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _days(request: Request) -> int:
    try:
        return query_int(request.query_params, "days", default=queries.CHART_DAYS, minimum=1, maximum=MAX_DAYS)
    except BadInput as exc:
        raise ValidationError({"days": [str(exc)]}) from None


class UsageView(Private, APIView):
    @extend_schema(
        summary="Your requests, tokens and cost: recently and all time", parameters=[DAYS], responses=UsageSerializer
    )
    def get(self, request: Request) -> Response:
        user, days = _user(request), _days(request)
        _, since = queries.chart_window(days)
        return Response(
            {
                "days": days,
                "recent": queries.usage_summary(user, since=since).as_dict(),
                "all_time": queries.usage_summary(user).as_dict(),
            }
        )


class DailyUsageView(Private, APIView):
    @extend_schema(
        summary="Your tokens per day by model (the profile's chart)", parameters=[DAYS], responses=DailySerializer
    )
    def get(self, request: Request) -> Response:
        user, days = _user(request), _days(request)
        data = queries.daily_tokens_by_model(user, days=days)
        _, since = queries.chart_window(days)
        data["totals"] = queries.usage_summary(user, since=since).as_dict()
        return Response(data)
