"""SLA sweep and clock upkeep: does the breach sweep cost O(due) or O(stored clocks), and what does keeping a
ticket's clocks in step cost per ticket event?

A desk keeps every clock it ever ran: most are stopped (met), the open tickets' ones run with deadlines days
ahead, and at any sweep a few are due. The sweep reads only the due ones through the partial index
sla_clock_breach_due_idx, claims them with SELECT ... FOR UPDATE SKIP LOCKED in batches of 500, marks them and
queues one "sla.escalate" outbox message each, in the same transaction. This prints the sweep's time for
1,000 due clocks among 10k and among 1M stored ones (SD_BENCH_SLA_LARGE to change the large size), their
ratio, the same marking written by hand in SQL in the same run, and the plan PostgreSQL uses.

Then the per-event cost: `incident_sla_sync` (facts, the ticket's clocks locked and moved, `sla_due_at`) for a
hold, a resume and a priority change, beside a plain one-row UPDATE of the incident.

The outbox hand-offs go to kombu's in-memory transport (this process's own), so the bench leaves nothing on a
shared broker; a Redis publish adds one round trip per message. Both sizes are kept at once (a database each)
and measured in alternating rounds (bench/common.py: interleave); every sample starts from the same table (its
due clocks made before it, they and their outbox rows removed after it). Figures, not a pass/fail test.
"""

import os
import time
from datetime import timedelta

os.environ["CELERY_BROKER_URL"] = "memory://"  # before Django and Celery read it

from common import SizeDatabases, interleave, machine_load, summary, timed  # noqa: E402

SIZES = [10_000, int(os.environ.get("SD_BENCH_SLA_LARGE", "1000000"))]
print(f"machine at start: {machine_load()}")
dbs = SizeDatabases("servicedesk_bench_sla", SIZES)

from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from sla.models import BusinessCalendar, SlaClock  # noqa: E402
from sla.sweep import sla_sweep  # noqa: E402

DUE = 1_000
ROUNDS = int(os.environ.get("SD_BENCH_ROUNDS", "5"))
REPEAT = int(os.environ.get("SD_BENCH_REPEAT", "2"))
CALENDAR_IDS = {}
for _size in SIZES:
    dbs.use(_size)
    CALENDAR_IDS[_size] = BusinessCalendar.objects.get(name="24x7").id

CLOCK_COLUMNS = """(ticket_type, ticket_id, kind, state, policy_name, calendar_id, priority, target_seconds,
                    warning_percent, pause_statuses, started_at, running_since, elapsed_seconds, due_at, warn_at,
                    stopped_at, segments, updated_at)"""


def fill_clocks(total: int) -> None:
    """Stored clocks up to `total`, inserted by PostgreSQL itself (generate_series): 80 % stopped (met), 20 %
    running with their deadline 2 to 30 days ahead. None is due."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sla_slaclock WHERE ticket_type = 'stored' AND ticket_id > %s", [total])
    have = SlaClock.objects.filter(ticket_type="stored").count()
    if have >= total:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO sla_slaclock {CLOCK_COLUMNS}
            SELECT 'stored', g, CASE WHEN g %% 2 = 0 THEN 'resolution' ELSE 'first_response' END,
                   CASE WHEN g %% 5 = 0 THEN 'running' ELSE 'met' END, 'Bench', %s, 3, 14400, 75, '[]'::jsonb,
                   now() - interval '1 day',
                   CASE WHEN g %% 5 = 0 THEN now() - interval '1 hour' END, 0,
                   CASE WHEN g %% 5 = 0 THEN now() + interval '2 days' + (g %% 2419200) * interval '1 second' END,
                   CASE WHEN g %% 5 = 0 THEN now() + interval '1 day' + (g %% 2419200) * interval '1 second' END,
                   CASE WHEN g %% 5 = 0 THEN NULL ELSE now() - interval '20 hours' END, '[]'::jsonb, now()
            FROM generate_series(%s, %s) AS g
            """,
            [CALENDAR_IDS[dbs.current], have + 1, total],
        )
        cursor.execute("ANALYZE sla_slaclock")


def make_due(count: int) -> None:
    """`count` running clocks whose warning and deadline have passed (new tickets: their own ids)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO sla_slaclock {CLOCK_COLUMNS}
            SELECT 'due', g, 'resolution', 'running', 'Bench', %s, 3, 14400, 75, '[]'::jsonb,
                   now() - interval '5 hours', now() - interval '5 hours', 0,
                   now() - interval '1 hour' - g * interval '1 millisecond',
                   now() - interval '2 hours', NULL, '[]'::jsonb, now()
            FROM generate_series(1, %s) AS g
            """,
            [CALENDAR_IDS[dbs.current], count],
        )


def clean_up() -> None:
    """Drop this round's due clocks and messages, so every round sees the same table."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sla_slaclock WHERE ticket_type = 'due'")
        cursor.execute("DELETE FROM servicedesk_outboxmessage WHERE handler = 'sla.escalate'")


def sweep() -> None:
    result = sla_sweep()
    assert (result.breached, result.warned) == (DUE, 0), result


RAW_MARK = """
    UPDATE sla_slaclock SET breached_at = %(now)s, warned_at = COALESCE(warned_at, %(now)s), warn_at = NULL
    WHERE id IN (SELECT id FROM sla_slaclock
                 WHERE state = 'running' AND breached_at IS NULL AND due_at <= %(now)s
                 ORDER BY due_at LIMIT 500 FOR UPDATE SKIP LOCKED)
    RETURNING id"""

RAW_MARK_AND_QUEUE = f"""
    WITH marked AS ({RAW_MARK})
    INSERT INTO servicedesk_outboxmessage (handler, payload, state, attempts, last_error, created_at,
                                           next_attempt_at)
    SELECT 'sla.escalate', jsonb_build_object('clock_id', id, 'stage', 'breach', 'at', %(now)s::text), 'pending',
           0, '', now(), now()
    FROM marked RETURNING id"""


def raw(sql: str):
    def run() -> None:
        now, done = timezone.now(), 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, {"now": now})
                n = len(cursor.fetchall())
            done += n
            if n < 500:
                break
        assert done == DUE, done

    return run


def median(samples: list[float]) -> float:
    return sorted(samples)[len(samples) // 2]


def sweep_plan() -> list[str]:
    """EXPLAIN of the claim query the sweep really sends (captured, with its parameters)."""
    make_due(DUE)
    with CaptureQueriesContext(connection) as queries:
        sweep()
    clean_up()
    claim = next(q["sql"] for q in queries if "FOR UPDATE SKIP LOCKED" in q["sql"] and "due_at" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + claim)
        return [row[0] for row in cursor.fetchall()]


for size in SIZES:
    dbs.use(size)
    clean_up()
    started = time.perf_counter()
    fill_clocks(size)
    running = SlaClock.objects.filter(ticket_type="stored", state="running").count()
    print(f"stored clocks: {size:,} ready in {time.perf_counter() - started:.1f}s ({running:,} running, "
          f"{size - running:,} met); each sample adds {DUE:,} due clocks")

SWEEP = f"sla_sweep, {DUE:,} due (raw: mark + queue outbox rows)"
MARK = "raw SQL mark only (UPDATE ... RETURNING)"
results = interleave({
    SWEEP: lambda size: (sweep, raw(RAW_MARK_AND_QUEUE), lambda: make_due(DUE), clean_up),
    MARK: lambda size: (raw(RAW_MARK), None, lambda: make_due(DUE), clean_up),
}, sizes=SIZES, use=dbs.use, rounds=ROUNDS, repeat=REPEAT)
results.print("SLA sweep")
for size in SIZES:
    print(f"  {size:>9,} stored: {results.median(SWEEP, size) / DUE * 1000:.0f} µs/clock "
          f"({results.median(SWEEP, size) / results.median(MARK, size):.1f}x the bare mark)")
print("(O(due) means a large / small ratio of about 1x)")
dbs.use(SIZES[-1])

from servicedesk.outbox import HAND_OFF_CHUNK, hand_off, hand_off_chunk  # noqa: E402

ids = list(range(1, DUE + 1))
publish = timed(lambda: [hand_off_chunk(ids[i:i + HAND_OFF_CHUNK]) for i in range(0, DUE, HAND_OFF_CHUNK)], ROUNDS)
print(f"of which handing {DUE:,} messages to the broker (in-memory), {HAND_OFF_CHUNK} a task: {summary(publish)}")
one_each = timed(lambda: [hand_off(i) for i in ids], ROUNDS)
print(f"  the same, one task per message (as before chunks):       {summary(one_each)}")
print("plan of the sweep's claim query at the large size:")
for line in sweep_plan():
    print(f"    {line}")


# --- the clock upkeep per ticket event ------------------------------------------------------------------


def per_event() -> None:
    from incidents.models import Incident
    from incidents.sla import incident_sla_sync
    from incidents.states import HoldReason, Status
    from servicedesk.services import user_provision
    from sla.defaults import ensure_defaults

    ensure_defaults()
    user, _ = user_provision(username="bench-requester", role="requester", email="bench@example.com")
    from incidents.services import incident_create

    def fresh() -> Incident:
        made = incident_create(title="Bench: clock upkeep", requester=user, created_by=user)
        Incident.objects.filter(id=made.id).update(status=Status.IN_PROGRESS)
        made.status = Status.IN_PROGRESS
        return made

    incident = fresh()
    now = timezone.now()

    def event(change):
        def run():
            nonlocal now
            now += timedelta(minutes=1)
            change()
            with transaction.atomic():
                incident_sla_sync(incident, now=now, reason="bench")
        return run

    def hold():
        incident.status, incident.hold_reason = Status.ON_HOLD, HoldReason.AWAITING_CALLER

    def resume():
        incident.status, incident.hold_reason = Status.IN_PROGRESS, ""

    def priority():
        incident.priority = 4 if incident.priority == 3 else 3

    def nothing():
        pass

    def plain_update():
        with transaction.atomic():
            Incident.objects.filter(id=incident.id).update(title="Bench: clock upkeep")

    runs = {"hold": [], "resume": [], "priority P3 <-> P4": [], "no change (e.g. an edit)": []}
    queries = {}
    for i in range(200):
        if i and i % 10 == 0:  # a ticket sees tens of events, not hundreds: a new one every 10 rounds
            incident, now = fresh(), timezone.now()
        for label, fn in (("hold", event(hold)), ("resume", event(resume)),
                          ("priority P3 <-> P4", event(priority)), ("no change (e.g. an edit)", event(nothing))):
            if i == 0:
                with CaptureQueriesContext(connection) as captured:
                    fn()
                queries[label] = len(captured)
            else:
                runs[label].extend(timed(fn, 1))
    base = timed(plain_update, 500)
    print("\nincident_sla_sync per ticket event (P3/P4 incidents on office hours, first response and resolution "
          "clocks):")
    for label, samples in runs.items():
        print(f"  {label:<26}{summary(samples)}   {queries[label]} queries   "
              f"({median(samples) / median(base):.1f}x the plain UPDATE)")
    print(f"  {'plain one-row UPDATE':<26}{summary(base)}   1 query")
    clocks = SlaClock.objects.filter(ticket_type="incident", ticket_id=incident.id)
    print(f"  (a new incident every 40 events; its longest clock then keeps "
          f"{max(len(c.segments) for c in clocks)} segments)")


per_event()
