"""The embedded PostgreSQL used when DATABASE_URL is unset.

pgserver keeps one server per data directory and counts the processes holding it,
so every process (the web server, manage.py, the test runner) can ask for it and the
last one out stops it.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path


def ensure_embedded_postgres(pgdata: Path) -> str:
    """Start (or attach to) the server for `pgdata`; return a libpq URI for database `postgres`."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); its /tmp fallback is fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", module="platformdirs")
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit(
            "DATABASE_URL is unset and the embedded PostgreSQL (pgserver) is not installed: "
            "run `make run`, or set DATABASE_URL=postgres://..."
        ) from exc

    # pgserver logs every step at INFO before Django's logging is configured.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    pgdata.mkdir(parents=True, exist_ok=True)
    fresh = not (pgdata / "PG_VERSION").exists()
    if fresh:
        print(f"Creating the embedded PostgreSQL under {pgdata} (first run only)...", file=sys.stderr, flush=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    uri: str = server.get_uri()
    return uri
