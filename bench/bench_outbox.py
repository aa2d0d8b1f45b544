"""Outbox relay: does re-driving pending side effects cost O(due) or O(history)?

A desk keeps a week of done outbox rows (every mail and webhook of the week) and, after a broker outage, a
few hundred pending ones. The relay claims each due row with SELECT ... FOR UPDATE SKIP LOCKED through the
partial index on pending rows, runs its handler and marks it done. This prints the relay's rate with 10k and
1M done rows beside the pending ones, and a hand-written SQL loop doing the same claim-and-mark with no
handler, in the same run. Both sizes are kept at once (a database each) and measured in alternating rounds;
each sample starts from the same table (its due rows made before it, removed after it). Figures, not a
pass/fail test.
"""

import os
import time
from datetime import timedelta

from common import SizeDatabases, interleave, machine_load

SIZES = [10_000, int(os.environ.get("SD_BENCH_OUTBOX_LARGE", "1000000"))]
ROUNDS = int(os.environ.get("SD_BENCH_ROUNDS", "5"))
REPEAT = int(os.environ.get("SD_BENCH_REPEAT", "2"))
print(f"machine at start: {machine_load()}")
dbs = SizeDatabases("servicedesk_bench_outbox", SIZES)

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from servicedesk.models import OutboxMessage  # noqa: E402
from servicedesk.outbox import outbox_handler, outbox_relay  # noqa: E402

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
            assert row is not None, "fewer due rows than the relay had"
            cursor.execute(
                "UPDATE servicedesk_outboxmessage SET state = 'done', attempts = attempts + 1, processed_at = now()"
                " WHERE id = %s",
                [row[0]],
            )


def clean_up() -> None:
    """Remove a sample's rows, so every sample sees the same table."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM servicedesk_outboxmessage WHERE handler = 'bench.noop'")


for size in SIZES:
    dbs.use(size)
    clean_up()
    started = time.perf_counter()
    fill_history(size)
    print(f"history: {size:,} done rows ready in {time.perf_counter() - started:.1f}s")

name = f"relay {DUE} due rows (raw: the same claim-and-mark by hand)"
results = interleave({name: lambda size: (relay_all, raw_sql_all, lambda: make_due(DUE), clean_up)},
                     sizes=SIZES, use=dbs.use, rounds=ROUNDS, repeat=REPEAT)
results.print("outbox relay")
for size in SIZES:
    per = results.median(name, size) / DUE
    raw_per = results.median(name, size, "raw") / DUE
    print(f"  {size:>9,} done rows: relay {per:.2f} ms/row ({1000 / per:,.0f} rows/s), raw SQL {raw_per:.2f} ms/row")
print("(O(due) means a large / small ratio of about 1x)")
print(f"machine at the end: {machine_load()}")
