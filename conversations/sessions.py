"""A chat socket lives exactly as long as the login it was opened with.

Every action on a socket re-checks its session (`user_of`): the session still exists, still names
the user, carries the user's current auth hash (a password change invalidates it) and the user is
still active; Django's own `get_user` decides, as for any HTTP request. And so that a socket nobody
touches does not stay open either, the end of a login reaches the user's sockets on every worker
through their user group:

- a session deleted (logout, an admin deleting it, a login cycling the key):
  {"type": "session.ended", "session": <digest>}: that session's sockets close at once. It is sent
  once the row is gone, so a browser reconnecting at once is refused rather than let in again;
- a password change, deactivation or deletion of the user: {"type": "session.check"}: each socket
  re-checks its own session and closes if it no longer holds (after a password change, the
  session that made it stays valid).

With a session engine that keeps no rows (cache, signed cookies), logout is told through Django's
user_logged_out signal instead, sent just before the session is emptied. A change made with
`QuerySet.update()` or raw SQL sends no signal; such a socket still stops at its next action.
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.backends.base import SessionBase
from django.db.models.signals import post_delete, post_init, post_save
from django.utils.module_loading import import_string

from accounts.models import User
from conversations.events import publish, user_group


def digest(session_key: str | None) -> str:
    """Names a session in events without its key, which is a credential."""
    return hashlib.sha256(f"chatsite.session:{session_key or ''}".encode()).hexdigest()


class _ReadOnlySession(dict[str, Any]):
    """A session's data for `auth.get_user`, which flushes or cycles a session it rejects or
    re-signs: a socket cannot hand a browser a new cookie, so nothing is written back from here."""

    def flush(self) -> None:
        self.clear()

    def cycle_key(self) -> None:
        pass


def _session_data(session_key: str) -> dict[str, Any]:
    engine = import_string(f"{settings.SESSION_ENGINE}.SessionStore")
    store: SessionBase = engine(session_key)
    return dict(store.load())  # {} when it no longer exists or has expired


def user_of(session_key: str | None) -> User | None:
    """The active user the session is still logged in as, read afresh; None once it is not."""
    if not session_key:
        return None
    request = SimpleNamespace(session=_ReadOnlySession(_session_data(session_key)))
    user = auth.get_user(request)  # type: ignore[arg-type]
    return user if isinstance(user, User) and user.is_active else None


def still_valid(session_key: str | None, user_id: int) -> User | None:
    user = user_of(session_key)
    return user if user is not None and user.pk == user_id else None


# --- signals (connected in ConversationsConfig.ready) -----------------------------------------------

_WATCHED = ("password", "is_active")


def _ended(user_id: Any, session_key: str | None) -> None:
    try:
        pk = int(user_id)
    except (TypeError, ValueError):
        return
    publish(user_group(pk), {"type": "session.ended", "session": digest(session_key)})


def _session_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    try:
        data = instance.get_decoded()
    except Exception:  # a row that no longer decodes belongs to no login
        return
    _ended(data.get(SESSION_KEY), instance.session_key)


def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None and getattr(request, "session", None) is not None:
        _ended(user.pk, request.session.session_key)


def _remember(sender: Any, instance: User, **kwargs: Any) -> None:
    instance._chat_sessions_seen = tuple(instance.__dict__.get(name) for name in _WATCHED)  # type: ignore[attr-defined]


def _saved(sender: Any, instance: User, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    before = getattr(instance, "_chat_sessions_seen", None)
    now = tuple(instance.__dict__.get(name) for name in _WATCHED)
    instance._chat_sessions_seen = now  # type: ignore[attr-defined]
    if created or before is None or before == now:
        return
    publish(user_group(instance.pk), {"type": "session.check"})


def _deleted(sender: Any, instance: User, **kwargs: Any) -> None:
    publish(user_group(instance.pk), {"type": "session.check"})


def _session_model() -> Any:
    engine = import_string(f"{settings.SESSION_ENGINE}.SessionStore")
    get_model_class = getattr(engine, "get_model_class", None)
    return get_model_class() if get_model_class is not None else None


def connect_signals() -> None:
    model = _session_model()
    if model is not None:
        post_delete.connect(_session_deleted, sender=model, dispatch_uid="chat-sessions-deleted-session")
    else:
        user_logged_out.connect(_logged_out, dispatch_uid="chat-sessions-logout")
    post_init.connect(_remember, sender=User, dispatch_uid="chat-sessions-remember")
    post_save.connect(_saved, sender=User, dispatch_uid="chat-sessions-saved")
    post_delete.connect(_deleted, sender=User, dispatch_uid="chat-sessions-deleted")
