"""HTTP clients of the app signed in as a user, as a browser is: session cookie, CSRF cookie and header."""

from __future__ import annotations

from typing import TypeVar

import httpx
from django.conf import settings
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client

from accounts.models import User

C = TypeVar("C", httpx.Client, httpx.AsyncClient)


def session_key(user: User) -> str:
    """A new login session of `user` (as after signing in); its key is the session cookie's value."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def sign_in(client: C, user: User | None, *, csrf: bool = True) -> C:
    """`client` as a browser signed in as `user` (None: only the CSRF cookie), sending its CSRF token."""
    if user is not None:
        client.cookies.set(settings.SESSION_COOKIE_NAME, session_key(user))
    if csrf:
        token = _get_new_csrf_string()
        client.cookies.set(settings.CSRF_COOKIE_NAME, token)
        client.headers["X-CSRFToken"] = token
    return client
