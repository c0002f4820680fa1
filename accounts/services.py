"""The profile's business logic: a user's own API keys, their usage, and ready-to-paste client snippets.

The usage aggregates read only the ledger (gateway.UsageRecord), so the profile, the chart and the admin
overview always agree with what the gateway charged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, F, IntegerField, Max, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, User
from gateway.models import LanguageModel, UsageRecord

CHART_DAYS = 30

_TOKENS = F("prompt_tokens") + F("completion_tokens")


# --- keys -----------------------------------------------------------------------------------------


def issue_key(
    user: User, name: str, *, expires_at: datetime | None = None, allowed_models: list[str] | None = None
) -> tuple[ApiKey, str]:
    """A new key for the user; the secret is returned once and never stored."""
    return keys.create_key(user, name.strip(), expires_at=expires_at, allowed_models=allowed_models)


def keys_with_usage(user: User) -> QuerySet[ApiKey]:
    """The user's keys, newest first, each annotated with `requests` and `tokens` from the ledger."""
    return (
        ApiKey.objects.filter(user=user)
        .annotate(
            requests=Count("usagerecord"),
            tokens=Coalesce(
                Sum(F("usagerecord__prompt_tokens") + F("usagerecord__completion_tokens")),
                Value(0),
                output_field=IntegerField(),
            ),
        )
        .order_by("-created_at", "-pk")
    )


def own_key(user: User, key_id: int) -> ApiKey:
    """One of the user's keys; another user's key is indistinguishable from a missing one (404)."""
    return get_object_or_404(ApiKey, pk=key_id, user=user)


def revoke_own_key(user: User, key_id: int) -> tuple[ApiKey, bool]:
    """Revoke one of the user's keys at once; the bool is False when it already was revoked."""
    key = own_key(user, key_id)
    return key, keys.revoke(key)


def key_status(key: ApiKey, now: datetime | None = None) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= (now or timezone.now()):
        return "expired"
    return "active"


def chat_models() -> QuerySet[LanguageModel]:
    """The models the snippets may name: those /v1 serves (a disabled provider's would only fail)."""
    return LanguageModel.objects.filter(enabled=True, is_chat=True, provider__enabled=True).order_by("public_id")


# --- usage ----------------------------------------------------------------------------------------


@dataclass
class UsageTotals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal("0")

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: UsageTotals) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost += other.cost

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost": str(self.cost),
        }


@dataclass
class UsageSummary:
    """Totals split by where the calls came from: the /v1 API and the browser chat."""

    api: UsageTotals = field(default_factory=UsageTotals)
    chat: UsageTotals = field(default_factory=UsageTotals)

    @property
    def total(self) -> UsageTotals:
        total = UsageTotals()
        total.add(self.api)
        total.add(self.chat)
        return total

    def as_dict(self) -> dict[str, Any]:
        return {"api": self.api.as_dict(), "chat": self.chat.as_dict(), "total": self.total.as_dict()}


def usage_summary(user: User | None, since: datetime | None = None) -> UsageSummary:
    """Requests, tokens and cost by source; `user=None` sums everyone's (the admin overview)."""
    records = UsageRecord.objects.all() if user is None else UsageRecord.objects.filter(user=user)
    if since is not None:
        records = records.filter(created_at__gte=since)
    rows = records.values("source").annotate(
        requests=Count("id"),
        prompt=Coalesce(Sum("prompt_tokens"), 0),
        completion=Coalesce(Sum("completion_tokens"), 0),
        spent=Coalesce(Sum("cost"), Value(Decimal("0")), output_field=DecimalField(max_digits=20, decimal_places=8)),
    )
    summary = UsageSummary()
    for row in rows:
        target = summary.chat if row["source"] == UsageRecord.Source.CHAT else summary.api
        target.add(UsageTotals(row["requests"], row["prompt"], row["completion"], row["spent"]))
    return summary


def chart_window(days: int = CHART_DAYS, now: datetime | None = None) -> tuple[list[date], datetime]:
    """The last `days` calendar days (today included) and the instant the first one starts."""
    today = timezone.localdate(now or timezone.now())
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    return [first + timedelta(days=i) for i in range(days)], start


def daily_tokens_by_model(
    user: User | None = None, days: int = CHART_DAYS, now: datetime | None = None
) -> dict[str, Any]:
    """Tokens per day and model over the last `days` days, for a stacked chart.

    `user=None` covers everyone (the admin overview). Days without usage are zeros, so every series has
    one value per label.
    """
    labels, start = chart_window(days, now)
    records = UsageRecord.objects.filter(created_at__gte=start)
    if user is not None:
        records = records.filter(user=user)
    rows = (
        records.annotate(day=TruncDate("created_at"))
        .values("day", "model_public_id", "source")
        .annotate(
            tokens=Coalesce(Sum(_TOKENS), 0),
            requests=Count("id"),
            spent=Coalesce(
                Sum("cost"), Value(Decimal("0")), output_field=DecimalField(max_digits=20, decimal_places=8)
            ),
        )
    )
    index = {day: i for i, day in enumerate(labels)}
    by_model: dict[str, list[int]] = {}
    by_source: dict[str, list[int]] = {source.value: [0] * days for source in UsageRecord.Source}
    requests = [0] * days
    cost = [Decimal("0")] * days
    for row in rows:
        i = index.get(row["day"])
        if i is None:  # a record stamped in the future (clock skew) has no bar to go in
            continue
        by_model.setdefault(row["model_public_id"], [0] * days)[i] += row["tokens"]
        by_source.setdefault(row["source"], [0] * days)[i] += row["tokens"]
        requests[i] += row["requests"]
        cost[i] += row["spent"]
    return {
        "days": days,
        "labels": [day.isoformat() for day in labels],
        "models": [{"model": model, "tokens": by_model[model]} for model in sorted(by_model)],
        "sources": [{"source": source, "tokens": tokens} for source, tokens in by_source.items()],
        "requests": requests,
        "cost": [str(value) for value in cost],
    }


def top_users(days: int = CHART_DAYS, limit: int = 10, now: datetime | None = None) -> list[dict[str, Any]]:
    """The heaviest users over the last `days` days, by tokens."""
    _, start = chart_window(days, now)
    rows = (
        User.objects.filter(usage__created_at__gte=start)
        .annotate(
            requests=Count("usage"),
            tokens=Coalesce(Sum(F("usage__prompt_tokens") + F("usage__completion_tokens")), 0),
            spent=Coalesce(
                Sum("usage__cost"), Value(Decimal("0")), output_field=DecimalField(max_digits=20, decimal_places=8)
            ),
            api_requests=Count("usage", filter=Q(usage__source=UsageRecord.Source.API)),
            chat_requests=Count("usage", filter=Q(usage__source=UsageRecord.Source.CHAT)),
            last_used=Max("usage__created_at"),
        )
        .order_by("-tokens", "username")[:limit]
    )
    return [
        {
            "user": user,
            "requests": user.requests,
            "api_requests": user.api_requests,
            "chat_requests": user.chat_requests,
            "tokens": user.tokens,
            "cost": user.spent,
            "last_used": user.last_used,
        }
        for user in rows
    ]


# --- snippets -------------------------------------------------------------------------------------

KEY_PLACEHOLDER = "sk-...your-key..."


def snippets(base_url: str, model: str, api_key: str | None = None) -> dict[str, str]:
    """Client configurations for this server, ready to paste.

    String values are written as JSON string literals, which are valid Python, JavaScript and YAML.
    """
    key = api_key or KEY_PLACEHOLDER
    q_model, q_base, q_key = json.dumps(model), json.dumps(base_url), json.dumps(key)
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello!"}]})
    return {
        "curl": (
            f"curl {base_url}/chat/completions \\\n"
            f'  -H "Authorization: Bearer {key}" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            f"  -d '{body}'"
        ),
        "python": (
            "from openai import OpenAI\n\n"
            f"client = OpenAI(base_url={q_base}, api_key={q_key})\n"
            "reply = client.chat.completions.create(\n"
            f"    model={q_model},\n"
            '    messages=[{"role": "user", "content": "Hello!"}],\n'
            ")\n"
            "print(reply.choices[0].message.content)"
        ),
        "javascript": (
            'import OpenAI from "openai";\n\n'
            f"const client = new OpenAI({{ baseURL: {q_base}, apiKey: {q_key} }});\n"
            "const reply = await client.chat.completions.create({\n"
            f"  model: {q_model},\n"
            '  messages: [{ role: "user", content: "Hello!" }],\n'
            "});\n"
            "console.log(reply.choices[0].message.content);"
        ),
        "langchain": (
            "from langchain_openai import ChatOpenAI\n\n"
            f"llm = ChatOpenAI(model={q_model}, base_url={q_base}, api_key={q_key})\n"
            'print(llm.invoke("Hello!").content)'
        ),
        "continue": (
            "# ~/.continue/config.yaml\n"
            "name: chatsite\n"
            "version: 0.0.1\n"
            "schema: v1\n"
            "models:\n"
            f"  - name: {json.dumps('chatsite ' + model)}\n"
            "    provider: openai\n"
            f"    model: {q_model}\n"
            f"    apiBase: {q_base}\n"
            f"    apiKey: {q_key}\n"
            "    roles:\n"
            "      - chat\n"
            "      - edit\n"
            "      - apply"
        ),
    }


SNIPPET_LABELS = {
    "curl": "curl",
    "python": "Python (openai)",
    "javascript": "JavaScript (openai)",
    "langchain": "LangChain (ChatOpenAI)",
    "continue": "Continue (config.yaml)",
}
