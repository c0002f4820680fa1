"""Another worker's view of the deployments' averages: a process of its own with the gateway's store.

    python -m tests.gateway.latency_worker redis://127.0.0.1:6390/0    # the Redis store
    python -m tests.gateway.latency_worker /path/to/var/health/dbname   # the files store's folder

Reads commands on stdin, one a line, and answers each on stdout (so it stays alive, as a worker does,
while the test reads what it wrote): `read 3,4` prints {"3": [seconds, count], ...} of the measured
ones; `measure 3 0.25 1700000000.0`: deployment 3 answered in 0.25 s (a success, measured) at that clock time.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    from core.clock import ManualClock, use_clock
    from gateway.health import MemoryStore, Store
    from gateway.health_redis import RedisStore

    where = sys.argv[1]
    store: Store = RedisStore(where) if where.startswith("redis://") else MemoryStore(Path(where))

    async def serve() -> None:
        print("ready", flush=True)
        for line in sys.stdin:
            command, *args = line.split()
            if command == "read":
                found = await store.latencies([int(i) for i in args[0].split(",")])
                print(json.dumps({str(i): [round(m.seconds, 6), m.count] for i, m in found.items()}), flush=True)
            elif command == "measure":
                use_clock(ManualClock(float(args[2])))
                await store.succeeded(int(args[0]), float(args[1]))
                print("ok", flush=True)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
