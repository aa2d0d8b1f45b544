"""Outbox relay: does re-driving pending side effects cost O(due) or O(history)?

A desk keeps a week of done outbox rows (every mail and webhook of the week) and, after a broker outage, a
few hundred pending ones. The relay claims each due row with SELECT ... FOR UPDATE SKIP LOCKED through the
partial index on pending rows, runs its handler and marks it done. This prints the relay's rate with 10k and
1M done rows beside the pending ones, and a hand-written SQL loop doing the same claim-and-mark with no
handler, in the same run. Figures, not a pass/fail test.
"""

import os
import time
from datetime import timedelta

from common import setup_bench_database, summary, timed

setup_bench_database("servicedesk_bench_outbox")

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from servicedesk.models import OutboxMessage  # noqa: E402
from servicedesk.outbox import outbox_handler, outbox_relay  # noqa: E402

SIZES = [10_000, int(os.environ.get("SD_BENCH_OUTBOX_LARGE", "1000000"))]
DUE = 500


@outbox_handler("bench.noop")
def noop(message):
    return None


def fill_history(total: int) -> None:
    """Done rows up to `total`, inserted by PostgreSQL itself (generate_series): seconds, not minutes."""
    have = OutboxMessage.objects.filter(state="done").count()
    if have >= total:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO servicedesk_outboxmessage
                (handler, payload, state, attempts, last_error, created_at, next_attempt_at, processed_at)
            SELECT 'email.send', '{"template": "incident_created", "to": ["someone@example.com"]}'::jsonb,
                   'done', 1, '', now() - (g || ' seconds')::interval, now() - (g || ' seconds')::interval,
                   now() - (g || ' seconds')::interval
            FROM generate_series(1, %s) AS g
            """,
            [total - have],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE servicedesk_outboxmessage")


def make_due(count: int) -> None:
    old = timezone.now() - timedelta(minutes=5)  # older than the relay's minimum age: lost on the way
    OutboxMessage.objects.bulk_create(
        OutboxMessage(handler="bench.noop", payload={"n": i}, created_at=old, next_attempt_at=old)
        for i in range(count)
    )


def relay_all() -> None:
    ran = outbox_relay(batch=DUE, time_budget=600)
    assert ran == DUE, ran


def raw_sql_all() -> None:
    """The same claim-and-mark, one row per transaction, written by hand: the floor for this design."""
    for _ in range(DUE):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """SELECT id FROM servicedesk_outboxmessage
                   WHERE state = 'pending' AND next_attempt_at <= now() AND created_at <= now() - interval '60 s'
                   ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"""
            )
            row = cursor.fetchone()
            cursor.execute(
                "UPDATE servicedesk_outboxmessage SET state = 'done', attempts = attempts + 1, processed_at = now()"
                " WHERE id = %s",
                [row[0]],
            )


def measure(fn, repeat: int = 5) -> list[float]:
    samples = []
    for _ in range(repeat):
        make_due(DUE)
        samples.extend(timed(fn, 1))
    return samples


results = {}
for size in SIZES:
    started = time.perf_counter()
    fill_history(size)
    print(f"history: {size:,} done rows ready in {time.perf_counter() - started:.1f}s")
    measure(relay_all, repeat=1)  # warm
    ours = measure(relay_all)
    raw = measure(raw_sql_all)
    results[size] = (ours, raw)
    per = sorted(ours)[len(ours) // 2] / DUE
    raw_per = sorted(raw)[len(raw) // 2] / DUE
    print(f"  relay {DUE} due rows:   {summary(ours)}   -> {per:.2f} ms/row, {1000 / per:,.0f} rows/s")
    print(f"  raw SQL {DUE} due rows: {summary(raw)}   -> {raw_per:.2f} ms/row ({per / raw_per:.2f}x)")

small, large = SIZES
ratio = sorted(results[large][0])[2] / sorted(results[small][0])[2]
print(f"relay at {large:,} vs {small:,} done rows: {ratio:.2f}x (O(due) means about 1x)")
