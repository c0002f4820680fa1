"""`make run`: prepare everything the service needs, then serve it.

Each step prints what it does, so a first run that takes a while never looks hung.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured


def step(message: str) -> Callable[[], None]:
    started = time.monotonic()
    print(f"==> {message}...", flush=True)

    def done() -> None:
        print(f"    done in {time.monotonic() - started:.1f}s", flush=True)

    return done


def ensure_admin() -> None:
    from accounts.models import User

    password = os.environ.get("ADMIN_PASSWORD", "")
    user = User.objects.filter(username="admin").first()
    if user is None:
        generated = not password
        password = password or secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "", password)
        if generated:
            # Shown once: only its hash is stored.
            print(f"    created user 'admin' with password: {password}", flush=True)
            print("    (printed once; set ADMIN_PASSWORD to choose it)", flush=True)
        else:
            print("    created user 'admin' with the password from ADMIN_PASSWORD", flush=True)
    elif password and not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
        print("    updated the password of 'admin' from ADMIN_PASSWORD", flush=True)
    else:
        print("    user 'admin' exists", flush=True)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    from chatsite.env import env_int, env_str

    try:
        host = env_str("HOST", "127.0.0.1")
        port = env_int("PORT", 8000, minimum=1, maximum=65535)
        done = step(
            "Starting the database"
            + (" (DATABASE_URL)" if os.environ.get("DATABASE_URL") else " (embedded PostgreSQL under var/pgdata)")
        )
        import django

        django.setup()
    except ImproperlyConfigured as exc:
        sys.exit(f"Configuration error: {exc}")
    done()

    from django.core.management import call_command

    done = step("Applying migrations")
    call_command("migrate", interactive=False, verbosity=0)
    done()

    done = step("Collecting static files")
    call_command("collectstatic", interactive=False, verbosity=0)
    done()

    done = step("Checking the admin account")
    ensure_admin()
    done()

    from chatsite.local_model import start_local_model

    start_local_model()

    print(f"==> Serving on http://{host}:{port}/ (Ctrl-C stops everything)", flush=True)
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(["--bind", host, "--port", str(port), "--proxy-headers", "chatsite.asgi:application"])


if __name__ == "__main__":
    main()
