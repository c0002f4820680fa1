"""The daily rollup: the ledger folded into usage.DailyUsage, one row per day and dimensions.

    fold(batch=...)       # one bounded step: the next ledger rows by id, in one INSERT ... ON CONFLICT
    catch_up(max_rows=...)  # steps until the rollup is current or max_rows were folded

The ledger's write path is not involved: the rollup reads rows by id after a watermark
(RollupState.last_id), so a row written late (a buffered row stamped yesterday) still lands in its
own day. The watermark never passes a row whose writing transaction may still be open (settled_id),
and a step holds the watermark's row lock, so two folds never count a row twice.
"""

from __future__ import annotations

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from usage.models import DailyUsage, RollupState, UsageRecord

STATE = "daily"
BATCH = 200_000
# How long a fold waits for the ledger's open writes to end before leaving the rows to the next one.
LOCK_WAIT_MS = 2000
# Upper bounds (ms) of the latency histogram's buckets; one more bucket holds everything slower.
LATENCY_BOUNDS_MS = (100, 250, 500, 1000, 2000, 4000, 8000, 15000, 30000, 60000)

_LEDGER = UsageRecord._meta.db_table
_ROLLUP = DailyUsage._meta.db_table
_DIMENSIONS = "day, model_public_id, user_id, group_id, api_key_id, deployment_id, source"
_SUMS = "requests, errors, input_tokens, output_tokens, cost, latency_ms_sum, latency_count, latency_buckets"
_BOUNDS = "ARRAY[" + ", ".join(str(bound) for bound in LATENCY_BOUNDS_MS) + "]"
# width_bucket(x, bounds) is 0 below the first bound... len(bounds) at or past the last: buckets 1-based.
_BUCKETS = (
    "ARRAY["
    + ", ".join(
        f"count(*) FILTER (WHERE width_bucket(latency_ms - 1, {_BOUNDS}) = {i})"
        for i in range(len(LATENCY_BOUNDS_MS) + 1)
    )
    + "]::bigint[]"
)

# Every ledger id up to this one is settled: its row is committed, or will never be.
_SETTLED = f"SELECT max(id) FROM {_LEDGER}"  # noqa: S608 (table names from the models)
# The end of the next step: `batch` rows on, or the settled bound.
_UPTO = f"""
SELECT LEAST(%(settled)s, (SELECT id FROM {_LEDGER} WHERE id > %(last)s ORDER BY id OFFSET %(batch)s - 1 LIMIT 1))
"""  # noqa: S608 (table names from the models)

_FOLD = f"""
INSERT INTO {_ROLLUP} ({_DIMENSIONS}, {_SUMS})
SELECT (created_at AT TIME ZONE 'UTC')::date, model_public_id, user_id, group_id, api_key_id, deployment_id, source,
       count(*), count(*) FILTER (WHERE status >= 400), sum(prompt_tokens), sum(completion_tokens), sum(cost),
       sum(latency_ms), count(*), {_BUCKETS}
FROM {_LEDGER}
WHERE id > %(last)s AND id <= %(upto)s
GROUP BY 1, 2, 3, 4, 5, 6, 7
ON CONFLICT ({_DIMENSIONS}) DO UPDATE SET
    requests = {_ROLLUP}.requests + EXCLUDED.requests,
    errors = {_ROLLUP}.errors + EXCLUDED.errors,
    input_tokens = {_ROLLUP}.input_tokens + EXCLUDED.input_tokens,
    output_tokens = {_ROLLUP}.output_tokens + EXCLUDED.output_tokens,
    cost = {_ROLLUP}.cost + EXCLUDED.cost,
    latency_ms_sum = {_ROLLUP}.latency_ms_sum + EXCLUDED.latency_ms_sum,
    latency_count = {_ROLLUP}.latency_count + EXCLUDED.latency_count,
    latency_buckets = ARRAY(
        SELECT a + b FROM unnest({_ROLLUP}.latency_buckets, EXCLUDED.latency_buckets) AS t(a, b)
    )
"""  # noqa: S608 (table names from the models)


def settled_id() -> int | None:
    """The highest ledger id below which no row can still appear, or None when the ledger is busy.

    Ids are taken when a row is inserted, so a transaction still open may hold an id below rows
    already committed. A SHARE lock waits for every open writer of the ledger (and new ones wait for
    it, for as long as one SELECT): once it is held, every id up to the highest is final.
    """
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT_MS}ms'")
            cursor.execute(f"LOCK TABLE {_LEDGER} IN SHARE MODE")
            cursor.execute(_SETTLED)
            row = cursor.fetchone()
    except OperationalError:  # a writer held the ledger longer than LOCK_WAIT_MS: fold next time
        return None
    return int(row[0]) if row and row[0] is not None else 0


def fold(batch: int = BATCH) -> int:
    """Fold up to `batch` more ledger rows into the rollup; the number of ids the watermark moved on."""
    settled = settled_id()
    if settled is None:
        return 0
    with transaction.atomic():
        state, _ = RollupState.objects.select_for_update().get_or_create(name=STATE)
        if settled <= state.last_id:
            return 0
        with connection.cursor() as cursor:
            cursor.execute(_UPTO, {"last": state.last_id, "batch": batch, "settled": settled})
            upto = cursor.fetchone()[0]
            cursor.execute(_FOLD, {"last": state.last_id, "upto": upto})
        moved = upto - state.last_id
        state.last_id = upto
        state.updated_at = timezone.now()
        state.save(update_fields=["last_id", "updated_at"])
    return int(moved)


def catch_up(max_rows: int | None = None, batch: int = BATCH) -> int:
    """Fold until the rollup is current, or about `max_rows` ids were folded (a page's bounded share)."""
    total = 0
    while max_rows is None or total < max_rows:
        step = batch if max_rows is None else min(batch, max_rows - total)
        moved = fold(step)
        if moved == 0:
            break
        total += moved
    return total
