"""The profile's business logic: a user's own API keys and ready-to-paste client snippets.

Apps above this one add to a user's key listing (the usage ledger: each key's requests and tokens) by
registering with `annotate_own_keys` in their AppConfig.ready().
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.utils import timezone

from accounts import audit, keys
from accounts.models import ApiKey, User

# --- keys -----------------------------------------------------------------------------------------


def issue_key(
    user: User, name: str, *, expires_at: datetime | None = None, allowed_models: list[str] | None = None
) -> tuple[ApiKey, str]:
    """A new key for the user; the secret is returned once and never stored. Recorded in the audit log."""
    key, secret = keys.create_key(user, name.strip(), expires_at=expires_at, allowed_models=allowed_models)
    audit.record(user, key, audit.ADDITION, f"Created by its owner ({key.display}).")
    return key, secret


def own_key(user: User, key_id: int) -> ApiKey:
    """One of the user's keys; another user's key is indistinguishable from a missing one (404)."""
    return get_object_or_404(ApiKey, pk=key_id, user=user)


KeyAnnotation = Callable[[QuerySet[ApiKey]], QuerySet[ApiKey]]
_key_annotations: dict[str, KeyAnnotation] = {}


def annotate_own_keys(name: str, annotate: KeyAnnotation) -> None:
    """Have `own_keys` pass its listing through `annotate` (registered once per name)."""
    _key_annotations[name] = annotate


def own_keys(user: User) -> QuerySet[ApiKey]:
    """The user's keys, newest first, with what the registered apps annotate on each."""
    listing = ApiKey.objects.filter(user=user).order_by("-created_at", "-pk")
    for annotate in _key_annotations.values():
        listing = annotate(listing)
    return listing


def revoke_own_key(user: User, key_id: int) -> tuple[ApiKey, bool]:
    """Revoke one of the user's keys at once; the bool is False when it already was revoked."""
    key = own_key(user, key_id)
    revoked = keys.revoke(key)
    if revoked:
        audit.record(user, key, audit.CHANGE, f"Revoked by its owner ({key.display}).")
    return key, revoked


def key_status(key: ApiKey, now: datetime | None = None) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= (now or timezone.now()):
        return "expired"
    return "active"


# --- snippets -------------------------------------------------------------------------------------

KEY_PLACEHOLDER = "sk-...your-key..."

SNIPPET_LABELS = {
    "curl": "curl",
    "python": "Python (openai)",
    "javascript": "JavaScript (openai)",
    "responses": "Python (Responses API)",
    "responses_curl": "curl (Responses API)",
    "codex": "Codex CLI (config.toml)",
    "langchain": "LangChain (ChatOpenAI)",
    "continue": "Continue (config.yaml)",
}


def snippets(base_url: str, model: str, api_key: str | None = None) -> dict[str, str]:
    """Client configurations for this server, ready to paste (templates/accounts/snippets/).

    String values are written as JSON string literals, which are valid Python, JavaScript, TOML and YAML.
    """
    key = api_key or KEY_PLACEHOLDER
    context = {
        "base_url": base_url,
        "key": key,
        "q": {
            "model": json.dumps(model),
            "base": json.dumps(base_url),
            "key": json.dumps(key),
            "name": json.dumps(f"chatsite {model}"),
        },
        "body": json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello!"}]}),
        "responses_body": json.dumps({"model": model, "input": "Hello!"}),
    }
    # A template file ends with a line break; the snippet does not.
    return {
        name: render_to_string(f"accounts/snippets/{name}.txt", context).removesuffix("\n") for name in SNIPPET_LABELS
    }
