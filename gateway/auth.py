"""Who is calling and which model they may use: API keys and the model catalogue.

    caller = await authenticate_key(bearer_secret(authorization), model_hint=body_model)
    model = await get_model(public_id, caller)      # 404 model_not_found / 403 for a scoped key

Keys (with their user) and models come from the process's rights cache (gateway.lookups), which
every change to users, keys or the catalogue empties on every worker at once; on a miss the key
and the model the body names are read in one trip to the database. A key's expiry is checked
on every request against the cached row.

A model restricted to groups is, for anyone outside them, a model that does not exist: the same
404 model_not_found, and absent from /v1/models. A caller's groups are its user's (cached with
the key, or by user for the chat); a group's key has its group's, and a key's `allowed_models`
only narrows what they allow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from django.utils import timezone

from accounts import keys
from accounts.groups import group_ids
from accounts.models import ApiKey, User
from catalogue.models import LanguageModel
from core.db import db
from gateway.errors import GatewayError
from gateway.lookups import MISSING, lookups, secret_digest
from usage.ledger import current_ledger
from usage.models import UsageRecord

# A key's last_used_at is written when it is older than this (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Caller:
    """Who is calling, for auth, limits and the usage ledger."""

    user: User
    api_key: ApiKey | None  # None for browser chat
    source: str  # UsageRecord.Source.API or .CHAT
    # The model looked up with the key (authenticate's model_hint), used once by get_model.
    _prefetched: dict[str, LanguageModel | None] = field(default_factory=dict, compare=False, repr=False)
    # The groups whose models the caller may use; None: its user's, looked up when needed (the chat).
    groups: frozenset[int] | None = None


_INVALID_KEY = "Incorrect API key provided. You can find your API keys on your profile page."


def _unauthorized(message: str = _INVALID_KEY) -> GatewayError:
    return GatewayError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


def _find_model(public_id: str) -> LanguageModel | None:
    return LanguageModel.objects.usable().filter(public_id=public_id).first()


def _cached_sync(kind: str, key: Any, load: Callable[[], Any]) -> Any:
    value = lookups.get(kind, key)
    if value is MISSING:
        token = lookups.begin()
        value = load()
        lookups.put(kind, key, value, token)
    return value


def member_groups(user_id: int) -> frozenset[int]:
    """The groups of a user, from the rights cache when it may serve; for code on a database thread."""
    return cast(frozenset[int], _cached_sync("groups", user_id, lambda: group_ids(user_id)))


def find_usable_model(public_id: str, user: User | None = None) -> LanguageModel | None:
    """The usable model `public_id` (None if there is none, or none `user` may use), from the rights
    cache when it may serve; for code on a database thread (the chat's actions)."""
    model = cast(LanguageModel | None, _cached_sync("model", public_id, lambda: _find_model(public_id)))
    if model is None or user is None or model.open_to_everyone:
        return model
    if not model.open_to(member_groups(user.pk)):
        return None
    return model


@dataclass(frozen=True)
class _KeyRights:
    key: ApiKey
    groups: frozenset[int]


def _authenticate(secret: str, public_id: str | None) -> tuple[_KeyRights | None, LanguageModel | None]:
    key = keys.find_key(secret)
    if key is None:
        return None, None
    groups = frozenset({key.group_id}) if key.group_id is not None else group_ids(key.user_id)
    model = _find_model(public_id) if public_id else None
    return _KeyRights(key, groups), model


def bearer_secret(authorization_header: str | None) -> str:
    """The key of an `Authorization: Bearer <key>` header; GatewayError 401 when there is none."""
    if not authorization_header:
        raise _unauthorized(
            "You didn't provide an API key. Send it in an Authorization header using Bearer auth "
            "(i.e. Authorization: Bearer YOUR_KEY)."
        )
    scheme, _, secret = authorization_header.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise _unauthorized("The Authorization header must be 'Bearer YOUR_KEY'.")
    return secret


def anthropic_secret(x_api_key: str | None, authorization_header: str | None) -> str:
    """The key of a request in Anthropic's style: `x-api-key` (its SDKs' header), or a bearer token
    (Claude Code's ANTHROPIC_AUTH_TOKEN, newer SDKs). Either way it is the same key, authenticated
    as any other, with its scope, limits and budget; both headers at once must carry the same key.
    """
    x_api_key = (x_api_key or "").strip()
    if not x_api_key:
        if not authorization_header:
            raise _unauthorized(
                "You didn't provide an API key. Send it in an x-api-key header, or in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        return bearer_secret(authorization_header)
    if authorization_header and bearer_secret(authorization_header) != x_api_key:
        raise _unauthorized("The x-api-key and Authorization headers carry different keys; send one key.")
    return x_api_key


def google_secret(x_goog_api_key: str | None, authorization_header: str | None) -> str:
    """The key of a request in Google's style: `x-goog-api-key` (its SDKs' and gemini-cli's header,
    where gateway.asgi also puts a `?key=`) or a bearer token. Whichever carries it, it is the same key,
    with its scope, limits and budget; several at once must carry the same key.
    """
    given = {k.strip() for k in (x_goog_api_key or "").split(",") if k.strip()}
    if authorization_header:
        given.add(bearer_secret(authorization_header))
    if not given:
        raise _unauthorized(
            "You didn't provide an API key. Send it in an x-goog-api-key header, as ?key=YOUR_KEY, or in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    if len(given) > 1:
        raise _unauthorized("The request carries different keys; send one key.")
    return given.pop()


async def authenticate_key(secret: str, *, model_hint: str | None = None) -> Caller:
    """The caller presenting `secret`; GatewayError 401 invalid_api_key.

    `model_hint`: the model id the request asks for. It is looked up in the same trip to the
    database and kept on the Caller for get_model: one thread hop per request instead of two.
    """

    async def load(token: int | None) -> _KeyRights | None:
        rights, model = await db(_authenticate, secret, model_hint)
        if model_hint and rights is not None:
            lookups.put("model", model_hint, model, token)
            loaded[model_hint] = model
        return rights

    loaded: dict[str, LanguageModel | None] = {}
    rights = await lookups.read("key", secret_digest(secret), load)
    if rights is None or not rights.key.is_active or not rights.key.user.is_active:
        raise _unauthorized()
    key = rights.key
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        key.last_used_at = now  # the cached row too: touched once a minute, not on every request
        current_ledger().touch(key.pk)
    # The model read along with the key by this request (not by another one it waited for).
    return Caller(key.user, key, UsageRecord.Source.API, loaded, rights.groups)


def model_not_found(public_id: str) -> GatewayError:
    return GatewayError(
        404,
        f"The model '{public_id}' does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def _check_scope(public_id: str, caller: Caller | None) -> None:
    key = caller.api_key if caller is not None else None
    if key is not None and key.allowed_models and public_id not in key.allowed_models:
        raise GatewayError(
            403,
            f"This API key may not use the model '{public_id}'. It may use: {', '.join(key.allowed_models)}.",
            type="permission_error",
            param="model",
            code="model_not_allowed",
        )


async def caller_groups(caller: Caller | None) -> frozenset[int]:
    """The groups whose restricted models the caller may use (none for no caller)."""
    if caller is None:
        return frozenset()
    if caller.groups is not None:
        return caller.groups
    user_id = caller.user.pk
    return cast(frozenset[int], await lookups.read("groups", user_id, lambda _token: db(group_ids, user_id)))


async def get_model(public_id: str, caller: Caller | None = None) -> LanguageModel:
    """A usable model; 404 model_not_found (also for one restricted to groups the caller is not in),
    or 403 for a key scoped to others."""
    if caller is not None and public_id in caller._prefetched:
        model = caller._prefetched.pop(public_id)
    elif not public_id:
        model = None
    else:
        model = await lookups.read("model", public_id, lambda _token: db(_find_model, public_id))
    if model is None or not (model.open_to_everyone or model.open_to(await caller_groups(caller))):
        raise model_not_found(public_id)
    _check_scope(public_id, caller)
    return model


def _listed(allowed: list[str] | None) -> list[LanguageModel]:
    return list(LanguageModel.objects.usable().allowed_for(allowed))


async def list_models(caller: Caller | None = None) -> list[LanguageModel]:
    """The usable models the caller may use (narrowed to a scoped key's), by public id."""
    allowed = caller.api_key.allowed_models if caller is not None and caller.api_key is not None else None
    cache_key = tuple(allowed) if allowed else ()
    listed = await lookups.read("list", cache_key, lambda _token: db(_listed, allowed))
    groups = await caller_groups(caller)
    return [model for model in listed if model.open_to(groups)]
