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
    return JsonResponse({"status": "ok", "database": "ok"})
