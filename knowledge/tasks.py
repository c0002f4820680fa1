"""The ingestion queue: procrastinate on our PostgreSQL (no other service), its worker `manage.py knowledge_worker`.

A job names one store file. A worker that dies mid-file stops sending heartbeats; its jobs are then "stalled"
and put back on the queue (at a worker's start, and every few minutes by a periodic task), and `ingest`
redoes the file whole.
"""

from __future__ import annotations

from django.db import close_old_connections
from procrastinate import App, JobContext
from procrastinate.contrib.django import app

from knowledge import services

QUEUE = "knowledge"
# A worker silent this long is taken for dead (procrastinate's workers beat every 10 s by default).
STALLED_AFTER_SECONDS = 60


@app.task(name="knowledge.ingest", queue=QUEUE)
def ingest_file(entry_id: int) -> None:
    close_old_connections()
    try:
        services.ingest(entry_id)
    finally:
        close_old_connections()


async def retry_stalled(worker_app: App) -> int:
    """Puts the jobs of dead workers back on the queue; returns how many."""
    stalled = list(
        await worker_app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=STALLED_AFTER_SECONDS)
    )
    for job in stalled:
        await worker_app.job_manager.retry_job(job)
    return len(stalled)


@app.periodic(cron="*/5 * * * *")
@app.task(name="knowledge.retry_stalled", queue=QUEUE, queueing_lock="knowledge.retry_stalled", pass_context=True)
async def retry_stalled_jobs(context: JobContext, timestamp: int) -> None:
    await retry_stalled(context.app)


def enqueue(entry_id: int) -> None:
    ingest_file.defer(entry_id=entry_id)
