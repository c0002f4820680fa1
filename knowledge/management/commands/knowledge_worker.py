"""`manage.py knowledge_worker`: ingests queued files until SIGINT or SIGTERM (it finishes the file at hand)."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from procrastinate.contrib.django import app

from knowledge.tasks import QUEUE, retry_stalled


class Command(BaseCommand):
    help = "Runs the knowledge ingestion worker (extract, chunk, embed, store) until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", type=int, default=1, help="files ingested at once (memory grows with it)")

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self._run(options["concurrency"]))

    async def _run(self, concurrency: int) -> None:
        with app.replace_connector(app.connector.get_worker_connector()) as worker_app:  # type: ignore[attr-defined]
            async with worker_app.open_async():
                retried = await retry_stalled(worker_app)
                if retried:
                    self.stdout.write(f"put {retried} stalled job(s) back on the queue")
                self.stdout.write("knowledge worker ready", ending="\n")
                self.stdout.flush()
                await worker_app.run_worker_async(queues=[QUEUE], concurrency=concurrency)
