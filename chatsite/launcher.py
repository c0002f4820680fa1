"""`make run`: prepare everything the service needs, then serve it.

Each step prints what it does, so a first run that takes a while never looks hung. The bundled local
model is installed and started in the background (chatsite.local_model.prepare_local_model): the site
serves as soon as its database is ready.

The server is uvicorn (with uvloop and httptools) unless SERVER=daphne: both serve HTTP and
WebSockets, both stop gracefully on SIGTERM with the usage ledger written (see chatsite.asgi).
Neither writes a line per request unless ACCESS_LOG=1.
"""

from __future__ import annotations

import os
import secrets
import signal
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


def clear_worker_files() -> None:
    """Forget what the workers of an earlier run left: their metrics and circuits (before ours are written)."""
    import shutil
    from pathlib import Path

    from django.conf import settings

    for folder in (Path(settings.PROMETHEUS_MULTIPROC_DIR), Path(settings.HEALTH_DIR)):
        if folder.is_dir():
            for child in folder.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)


SERVERS = ("uvicorn", "daphne")


def server_choice() -> str:
    """The SERVER variable: which ASGI server `make run` starts."""
    from core.env import env_str

    server = env_str("SERVER", SERVERS[0]).lower()
    if server not in SERVERS:
        raise ImproperlyConfigured(f"SERVER must be one of {', '.join(SERVERS)}, got {server!r}")
    return server


def serve(server: str, host: str, port: int, access_log: bool) -> None:
    target = "chatsite.asgi:application"
    if server == "daphne":
        from daphne.cli import CommandLineInterface

        # Daphne writes a line per request at its default verbosity (1); 0 keeps only its warnings.
        options = ["--bind", host, "--port", str(port), "--proxy-headers", "-v", "0"]
        if access_log:
            options += ["--access-log", "-"]
        CommandLineInterface().run([*options, target])
        return
    import logging

    import uvicorn

    if access_log:
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)  # whatever LOG_LEVEL says
    uvicorn.run(
        target,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        proxy_headers=True,
        access_log=access_log,
        # Django's LOGGING configures the loggers; uvicorn's own config would replace it.
        log_config=None,
        timeout_graceful_shutdown=30,
    )


def stop_on_sigterm() -> None:
    """SIGTERM (a process manager's stop) ends the launcher as Ctrl-C does: through its exit hooks.

    Those stop the embedded PostgreSQL (pgserver's hook; pg_ctl starts it in a session of its own, so the
    signal to our process group never reaches it) and the local model's servers. Python's default for
    SIGTERM skips them, and uvicorn, having shut down gracefully, raises the signal it caught once more.
    """

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)


def main() -> None:
    stop_on_sigterm()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    from core.env import env_bool, env_int, env_str

    try:
        host = env_str("HOST", "127.0.0.1")
        port = env_int("PORT", 8000, minimum=1, maximum=65535)
        server = server_choice()
        access_log = env_bool("ACCESS_LOG", False)
        done = step(
            "Starting the database"
            + (" (DATABASE_URL)" if os.environ.get("DATABASE_URL") else " (embedded PostgreSQL under var/pgdata)")
        )
        import django

        clear_worker_files()
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

    from usage.ledger import mark_interrupted

    interrupted = mark_interrupted()
    if interrupted:
        print(f"    {interrupted} API call(s) cut by an earlier crash: marked interrupted in the ledger", flush=True)

    from chatsite.local_model import prepare_local_model

    # In the background: a first run installs it for minutes; nobody should wait for that to sign in.
    prepare_local_model()

    from chatsite.local_embedding import start_local_embedding

    start_local_embedding()  # about two seconds: its weights load from the installed package

    from chatsite.worker import start_knowledge_worker

    start_knowledge_worker()

    print(f"==> Serving on http://{host}:{port}/ with {server} (Ctrl-C stops everything)", flush=True)
    serve(server, host, port, access_log)


if __name__ == "__main__":
    main()
