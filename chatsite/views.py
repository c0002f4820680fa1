from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, JsonResponse


async def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database_answers() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not ready"
        return exc.__class__.__name__
    finally:
        connection.close()
    return None


async def readyz(request: HttpRequest) -> JsonResponse:
    problem = await sync_to_async(_database_answers)()
    if problem:
        return JsonResponse({"status": "unavailable", "reason": f"database unreachable ({problem})"}, status=503)
    from gateway.lookups import lookups

    # "listening": /v1 rights come from this worker's cache; "database": its listener is down, so
    # they are read from the database on every request until it listens again (gateway.lookups).
    rights = "listening" if lookups.trusted() else "database"
    return JsonResponse({"status": "ok", "database": "ok", "rights_cache": rights})
