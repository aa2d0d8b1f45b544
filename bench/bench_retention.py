"""Retention (issue 13): how fast does the batched delete remove history, what does it do to the inserts and reads
running beside it, and would monthly partitions of the event and timeline tables do better?

On a database of its own (sd_retention_bench, generated with INSERT ... SELECT generate_series):

1. Reads at 10k and at full size (SD_BENCH_EVENTS, default 1,000,000 events; SD_BENCH_INCIDENTS x 10 timeline
   entries, default 300,000 x 10 = 3,000,000), each on the app's table and on a copy partitioned by month:
   an alert's latest 50 events (the alert page), events per hour over the last 24 h (the console's chart), the
   latest 50 events (admin's list), a ticket's timeline (the ticket page).
2. The app's retention run (servicedesk.retention, archive on) removing one month of events and one month of
   closed incidents with their timelines, while two other connections insert (an event / a timeline entry every
   few ms) and read (an alert's events / a ticket's timeline): latency of each before and during the run, and
   the number of backends seen waiting on a lock (pg_locks, sampled every 20 ms).
3. The same month removed from the partitioned copies by DETACH PARTITION + DROP TABLE.

Figures, not a pass/fail test. Run: DATABASE_URL=postgres://... python bench/bench_retention.py
"""

import multiprocessing
import os
import statistics
import threading
import time
from datetime import timedelta

os.environ["CELERY_BROKER_URL"] = "memory://"

from common import setup_bench_database  # noqa: E402

setup_bench_database(os.environ.get("SD_BENCH_DB", "sd_retention_bench"))

import psycopg2  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from incidents.models import Incident  # noqa: E402
from monitoring.models import Alert, Event, EventSource  # noqa: E402
from monitoring.sources import event_source_create  # noqa: E402
from servicedesk import retention  # noqa: E402
from servicedesk.models import RetentionRun, TimelineEntry  # noqa: E402

EVENTS = int(os.environ.get("SD_BENCH_EVENTS", "1000000"))
INCIDENTS = int(os.environ.get("SD_BENCH_INCIDENTS", "300000"))
PER_TICKET = 10
DAYS = 360  # history spread evenly over this many days; retention keeps the last 330 (one month is due)
KEEP = int(os.environ.get("SD_BENCH_KEEP_DAYS", "330"))
BUDGET = float(os.environ.get("SD_BENCH_BUDGET", "240"))
REPEAT = 30


def sql(statement, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def one(statement, params=None):
    return sql(statement, params)[0][0]


def insert_select(model, count: int, exprs: dict, start: int = 1) -> None:
    """INSERT INTO <table> SELECT ... FROM generate_series(start, start + count - 1) g, every column given: the
    expression in `exprs`, else NULL when nullable, else a neutral value of its type."""
    columns, values = [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        columns.append(f'"{f.column}"')
        if f.attname in exprs:
            values.append(exprs[f.attname])
        elif f.null:
            values.append("NULL")
        else:
            kind = f.get_internal_type()
            values.append({"BooleanField": "false", "JSONField": "'{}'::jsonb", "DateTimeField": "now()",
                           "BinaryField": "''::bytea"}.get(kind, "0" if "Integer" in kind else "''"))
    sql(f'INSERT INTO "{model._meta.db_table}" ({", ".join(columns)}) SELECT {", ".join(values)} '
        f"FROM generate_series({start}, {start + count - 1}) g")


def ms(samples):
    ordered = sorted(samples)
    if not ordered:
        return "no samples"
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered):7.2f} ms  p95 {p95:7.2f} ms  max {ordered[-1]:7.2f} ms  (n={len(ordered)})"


def timed(statement, params, repeat=REPEAT):
    samples = []
    with connection.cursor() as cursor:
        for _ in range(repeat):
            started = time.perf_counter()
            cursor.execute(statement, params)
            cursor.fetchall()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


# --- data ----------------------------------------------------------------------------------------------------


def spread(total: int) -> str:
    """A time within the last DAYS days for row g of `total`: g * 7919 mod total is a permutation of the rows
    (7919 is prime), so the first 10,000 rows are spread over the whole history as the full set is."""
    return f"now() - ((g::bigint * 7919) % {total})::float8 / {total} * {DAYS} * interval '1 day'"


def generate_events(start: int, count: int, source_id: int, alert_ids: list[int]) -> None:
    """Events spread evenly over DAYS days (the newest now), processed, each folded into one of the alerts."""
    alerts = "ARRAY[" + ",".join(map(str, alert_ids)) + "]"
    at = spread(EVENTS)
    insert_select(Event, count, {
        "source_id": str(source_id), "received_at": at,
        "status": "'firing'", "severity": "'warning'", "summary": "'Disk almost full on db' || (g % 50)",
        "occurred_at": at,
        "fingerprint": "'fp' || (g % 50)", "dedup_key": "md5(g::text)",
        "raw": """jsonb_build_object('labels', jsonb_build_object('host', 'db' || (g % 50)), 'n', g)""",
        "processed_at": at, "outcome": "'repeated'",
        "alert_id": f"({alerts})[1 + g % {len(alert_ids)}]",
    }, start=start)


def generate_tickets(start: int, count: int, requester_id: int, content_type_id: int) -> None:
    """Incidents (1 in 10 open, the others closed at a time spread over DAYS days) with PER_TICKET timeline
    entries each, a day apart before the closing."""
    closed_at = spread(INCIDENTS)
    insert_select(Incident, count, {
        "number": "'BINC' || lpad(g::text, 9, '0')", "title": "'Printer jams ' || g", "description": "'It jams.'",
        "requester_id": str(requester_id), "created_at": f"{closed_at} - interval '{PER_TICKET} days'",
        "updated_at": closed_at, "version": "1", "channel": "'portal'", "impact": "3", "urgency": "3",
        "priority": "5", "status": "CASE WHEN g % 10 = 0 THEN 'in_progress' ELSE 'closed' END",
        "closed_at": f"CASE WHEN g % 10 = 0 THEN NULL ELSE {closed_at} END",
        "resolved_at": f"CASE WHEN g % 10 = 0 THEN NULL ELSE {closed_at} END",
    }, start=start)
    sql(f"""INSERT INTO servicedesk_timelineentry (content_type_id, object_id, kind, internal, author_id, body, data,
                                                   created_at)
            SELECT {content_type_id}, i.id, 'comment', false, NULL, 'Comment ' || k || ' on ' || i.number, '{{}}',
                   coalesce(i.closed_at, now()) - (k * interval '1 day')
            FROM incidents_incident i CROSS JOIN generate_series(1, {PER_TICKET}) k
            WHERE i.number >= 'BINC' || lpad(%s::text, 9, '0') AND i.number <= 'BINC' || lpad(%s::text, 9, '0')""",
        [start, start + count - 1])


def partitioned_copy(table: str, copy: str, key: str, indexes: list[str]) -> None:
    """`copy`: the table's rows in a table partitioned by month on `key` (DAYS days back, and one month ahead)."""
    sql(f"DROP TABLE IF EXISTS {copy} CASCADE")
    sql(f"CREATE TABLE {copy} (LIKE {table} INCLUDING DEFAULTS) PARTITION BY RANGE ({key})")
    first = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DAYS + 31)
    month = first.replace(day=1)
    while month < timezone.now() + timedelta(days=32):
        following = (month + timedelta(days=32)).replace(day=1)
        sql(f"CREATE TABLE {copy}_{month:%Y%m} PARTITION OF {copy} FOR VALUES FROM (%s) TO (%s)", [month, following])
        month = following
    sql(f"INSERT INTO {copy} SELECT * FROM {table}")
    for n, columns in enumerate(indexes):
        sql(f"CREATE INDEX {copy}_i{n} ON {copy} ({columns})")
    sql(f"ANALYZE {copy}")


# --- what runs beside the retention --------------------------------------------------------------------------


class Beside:
    """Two connections working while something else runs: one inserting, one reading; and a lock-wait sampler. In a
    process of their own (forked), so the run's Python work never holds them up (the GIL)."""

    def __init__(self, insert_sql, insert_params, read_sql, read_params):
        self.insert = (insert_sql, insert_params)
        self.read = (read_sql, read_params)
        self.stop = threading.Event()
        self.samples = {"insert": [], "read": []}
        self.waiting_max = 0
        self.waiting_seen = 0

    def _loop(self, name, statement, params):
        db = settings.DATABASES["default"]
        conn = psycopg2.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"] or "127.0.0.1",
                                port=db["PORT"] or 5432)
        conn.autocommit = True
        with conn.cursor() as cursor:
            while not self.stop.is_set():
                started = time.perf_counter()
                cursor.execute(statement, params)
                if cursor.description:
                    cursor.fetchall()
                self.samples[name].append((time.perf_counter() - started) * 1000)
                time.sleep(0.005)
        conn.close()

    def _locks(self):
        db = settings.DATABASES["default"]
        conn = psycopg2.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"] or "127.0.0.1",
                                port=db["PORT"] or 5432)
        conn.autocommit = True
        with conn.cursor() as cursor:
            while not self.stop.is_set():
                cursor.execute("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted")
                waiting = cursor.fetchone()[0]
                self.waiting_max = max(self.waiting_max, waiting)
                self.waiting_seen += bool(waiting)
                time.sleep(0.02)
        conn.close()

    def _child(self, stop, results):
        self.stop = threading.Event()
        threads = [threading.Thread(target=self._loop, args=("insert", *self.insert)),
                   threading.Thread(target=self._loop, args=("read", *self.read)),
                   threading.Thread(target=self._locks)]
        for thread in threads:
            thread.start()
        stop.wait()
        self.stop.set()
        for thread in threads:
            thread.join()
        results.put((self.samples, self.waiting_seen, self.waiting_max))

    def __enter__(self):
        context = multiprocessing.get_context("fork")
        connection.close()  # the child must not share the parent's connection
        self.stop_child, self.results = context.Event(), context.Queue()
        self.process = context.Process(target=self._child, args=(self.stop_child, self.results))
        self.process.start()
        time.sleep(1)  # its connections are open before the work starts
        return self

    def __exit__(self, *exc):
        self.stop_child.set()
        self.samples, self.waiting_seen, self.waiting_max = self.results.get(timeout=60)
        self.process.join()

    def report(self, title):
        print(f"  {title}: insert {ms(self.samples['insert'])}")
        print(f"  {' ' * len(title)}  read   {ms(self.samples['read'])}")
        print(f"  {' ' * len(title)}  lock waits: {self.waiting_seen} samples with a waiting backend, "
              f"at most {self.waiting_max} at once")


def beside(work, insert_sql, insert_params, read_sql, read_params, title):
    quiet = Beside(insert_sql, insert_params, read_sql, read_params)
    with quiet:
        time.sleep(5)
    quiet.report(f"{title}, nothing else running")
    busy = Beside(insert_sql, insert_params, read_sql, read_params)
    with busy:
        started = time.perf_counter()
        result = work()
        took = time.perf_counter() - started
    busy.report(f"{title}, during the run")
    return result, took


# --- the bench -----------------------------------------------------------------------------------------------


READS = {
    "an alert's latest 50 events": (
        "SELECT id, received_at, status, summary FROM {t} WHERE alert_id = %s ORDER BY received_at DESC LIMIT 50"),
    "events per hour, last 24 h": (
        "SELECT date_trunc('hour', received_at), count(*) FROM {t} WHERE received_at >= now() - interval '24 hours' "
        "GROUP BY 1"),
    "latest 50 events": "SELECT id, received_at, summary FROM {t} ORDER BY received_at DESC, id DESC LIMIT 50",
}
TIMELINE_READ = ("SELECT id, kind, body, created_at FROM {t} WHERE content_type_id = %s AND object_id = %s "
                 "ORDER BY created_at, id")


def reads(label, alert_id, content_type_id, ticket_id, partitioned: bool):
    for name, statement in READS.items():
        table = "bench_event_part" if partitioned else "monitoring_event"
        params = [alert_id] if "%s" in statement else None
        print(f"  {label:28} {name:30} {ms(timed(statement.format(t=table), params))}")
    table = "bench_timeline_part" if partitioned else "servicedesk_timelineentry"
    print(f"  {label:28} {'a ticket timeline':30} "
          f"{ms(timed(TIMELINE_READ.format(t=table), [content_type_id, ticket_id]))}")


def generate_and_read(now):
    print(f"retention bench: {EVENTS:,} events, {INCIDENTS:,} incidents x {PER_TICKET} timeline entries, "
          f"history over {DAYS} days, keeping {KEEP}")
    RetentionRun.objects.all().delete()
    sql("TRUNCATE monitoring_event, monitoring_alert, incidents_incident, servicedesk_timelineentry, "
        "sla_slaclock CASCADE")
    sql("DROP TABLE IF EXISTS bench_event_part, bench_timeline_part CASCADE")
    source = EventSource.objects.filter(name="bench").first() or event_source_create(name="bench")[0]
    alert_ids = [Alert.objects.create(source=source, fingerprint=f"fp{n}", summary=f"Disk on db{n}", severity="warning",
                                      classification="warning", first_seen=now, last_seen=now).id for n in range(50)]
    requester = get_user_model().objects.get_or_create(username="bench-requester")[0]
    ct = ContentType.objects.get_for_model(Incident).id

    started = time.perf_counter()
    small_events, small_tickets = 10_000, 1_000
    generate_events(1, small_events, source.id, alert_ids)
    generate_tickets(1, small_tickets, requester.id, ct)
    sql("ANALYZE")
    partitioned_copy("monitoring_event", "bench_event_part", "received_at",
                     ["received_at", "alert_id, received_at"])
    partitioned_copy("servicedesk_timelineentry", "bench_timeline_part", "created_at",
                     ["content_type_id, object_id, created_at"])
    sample_ticket = one("SELECT id FROM incidents_incident WHERE status = 'in_progress' ORDER BY id DESC LIMIT 1")
    print(f"\nReads ({small_events:,} events, {small_tickets * PER_TICKET:,} timeline rows)")
    reads("plain table", alert_ids[7], ct, sample_ticket, False)
    reads("partitioned by month", alert_ids[7], ct, sample_ticket, True)

    generate_events(small_events + 1, EVENTS - small_events, source.id, alert_ids)
    generate_tickets(small_tickets + 1, INCIDENTS - small_tickets, requester.id, ct)
    sql("ANALYZE")
    print(f"\ngenerated in {time.perf_counter() - started:.0f} s; copying into monthly partitions...")
    started = time.perf_counter()
    partitioned_copy("monitoring_event", "bench_event_part", "received_at",
                     ["received_at", "alert_id, received_at"])
    partitioned_copy("servicedesk_timelineentry", "bench_timeline_part", "created_at",
                     ["content_type_id, object_id, created_at"])
    print(f"copied in {time.perf_counter() - started:.0f} s")
    events, timeline = Event.objects.count(), TimelineEntry.objects.count()
    sample_ticket = one("SELECT id FROM incidents_incident WHERE status = 'in_progress' ORDER BY id DESC LIMIT 1")
    print(f"\nReads ({events:,} events, {timeline:,} timeline rows)")
    reads("plain table", alert_ids[7], ct, sample_ticket, False)
    reads("partitioned by month", alert_ids[7], ct, sample_ticket, True)

    return source, alert_ids, ct, sample_ticket


def main():
    now = timezone.now()
    if os.environ.get("SD_BENCH_KEEP_DATA") == "1":  # delete the next month of what an earlier run generated
        source = EventSource.objects.get(name="bench")
        alert_ids = list(Alert.objects.filter(source=source).order_by("id").values_list("id", flat=True))
        ct = ContentType.objects.get_for_model(Incident).id
        sample_ticket = one("SELECT id FROM incidents_incident WHERE status = 'in_progress' ORDER BY id DESC LIMIT 1")
        print(f"retention bench on the data left by an earlier run, keeping {KEEP} days")
    else:
        source, alert_ids, ct, sample_ticket = generate_and_read(now)
    deletes(now, source, alert_ids, ct, sample_ticket)
    if os.environ.get("SD_BENCH_NO_ARCHIVE_RUN") == "1":
        no_archive(now)


def no_archive(now):
    """One more month of each removed with the archive off (what the archive costs)."""
    settings.RETENTION_ARCHIVE = False
    for events_days, tickets_days in ((KEEP - 30, 0), (0, KEEP - 30)):
        settings.RETENTION_EVENTS_DAYS, settings.RETENTION_TICKETS_DAYS = events_days, tickets_days
        started = time.perf_counter()
        run = retention.retention_run(budget=BUDGET)
        took = time.perf_counter() - started
        for key, counts in run.counts.items():
            extra = counts.get("timeline_entries")
            print(f"archive off, {key}: {counts['removed']:,} in {took:.1f} s, {counts['removed'] / took:,.0f} rows/s"
                  + (f" ({extra / took:,.0f} timeline rows/s)" if extra else ""))


def deletes(now, source, alert_ids, ct, sample_ticket):
    print(f"\nQuery plans of what retention reads (cutoff {KEEP} days):")
    for label, qs in (("events due", retention.rules_by_key()["monitoring.events"].due(now - timedelta(days=KEEP))),
                      ("incidents due", retention._ticket_due(retention.registry.retentions["incident"],
                                                              now - timedelta(days=KEEP)))):
        plan = qs.order_by("received_at" if label == "events due" else "closed_at", "id").values("id")[:1000]
        print(f"  {label}:\n    " + plan.explain().replace("\n", "\n    "))

    # --- the app's batched delete, with inserts and reads beside it --------------------------------------------
    settings.RETENTION_EVENTS_DAYS, settings.RETENTION_TICKETS_DAYS = KEEP, 0
    settings.RETENTION_ARCHIVE_DIR = settings.MEDIA_ROOT / "bench-archive"
    due_events = retention.rules_by_key()["monitoring.events"].due(now - timedelta(days=KEEP)).count()
    size_before = one("SELECT pg_total_relation_size('monitoring_event')")
    print(f"\nEvents: the retention run removes {due_events:,} due events (batches of {settings.RETENTION_BATCH}, "
          f"archive on, budget {BUDGET:.0f} s)")
    insert_event = ("INSERT INTO monitoring_event (source_id, received_at, external_id, status, severity, summary, "
                    "description, service_name, ci_name, labels, occurred_at, fingerprint, group_key, dedup_key, raw, "
                    "outcome, error, alert_id) VALUES (%s, now(), '', 'firing', 'warning', 'Disk', '', '', '', '{}', "
                    "now(), 'fp1', '', md5(random()::text), '{}', '', '', %s)")
    run, took = beside(lambda: retention.retention_run(budget=BUDGET),
                       insert_event, [source.id, alert_ids[7]], READS["an alert's latest 50 events"].format(
                           t="monitoring_event"), [alert_ids[7]], "events")
    removed = run.counts.get("monitoring.events", {}).get("removed", 0)
    archive_size = os.path.getsize(run.archive) if run.archive else 0
    print(f"  removed {removed:,} events in {took:.1f} s: {removed / took:,.0f} rows/s ({run.state}); archive "
          f"{archive_size / 1e6:.1f} MB; table + indexes {size_before / 1e6:.0f} MB before, "
          f"{one('SELECT pg_total_relation_size(%s)', ['monitoring_event']) / 1e6:.0f} MB after (space is "
          f"reused by later inserts once vacuumed, not given back)")

    oldest = f"bench_event_part_{now - timedelta(days=KEEP + 15):%Y%m}"  # a whole month at the old end
    rows = one(f"SELECT count(*) FROM {oldest}")
    started = time.perf_counter()
    sql(f"ALTER TABLE bench_event_part DETACH PARTITION {oldest}")
    sql(f"DROP TABLE {oldest}")
    took_drop = time.perf_counter() - started
    print(f"  partitioned copy: DETACH + DROP of the oldest month ({rows:,} rows) took {took_drop * 1000:.0f} ms")

    settings.RETENTION_EVENTS_DAYS, settings.RETENTION_TICKETS_DAYS = 0, KEEP
    due_tickets = retention._ticket_due(retention.registry.retentions["incident"], now - timedelta(days=KEEP)).count()
    open_ticket = sample_ticket
    print(f"\nTickets: the retention run removes {due_tickets:,} due incidents and their timelines")
    insert_entry = ("INSERT INTO servicedesk_timelineentry (content_type_id, object_id, kind, internal, body, data, "
                    "created_at) VALUES (%s, %s, 'comment', false, 'More', '{}', now())")
    # The reader reads another open ticket than the one the inserter writes to (whose timeline grows).
    read_ticket = one("SELECT id FROM incidents_incident WHERE status = 'in_progress' AND id < %s ORDER BY id DESC "
                      "LIMIT 1", [open_ticket])
    run, took = beside(lambda: retention.retention_run(budget=BUDGET), insert_entry, [ct, open_ticket],
                       TIMELINE_READ.format(t="servicedesk_timelineentry"), [ct, read_ticket], "timeline")
    counts = run.counts.get("tickets.incident", {})
    removed, entries = counts.get("removed", 0), counts.get("timeline_entries", 0)
    print(f"  removed {removed:,} incidents and {entries:,} timeline entries in {took:.1f} s: "
          f"{removed / took:,.0f} tickets/s, {entries / took:,.0f} timeline rows/s ({run.state})")
    oldest = f"bench_timeline_part_{now - timedelta(days=KEEP + 15):%Y%m}"
    rows = one(f"SELECT count(*) FROM {oldest}")
    spans = one(f"""SELECT count(DISTINCT object_id) FROM {oldest} p WHERE EXISTS (
                      SELECT 1 FROM servicedesk_timelineentry t WHERE t.content_type_id = p.content_type_id
                      AND t.object_id = p.object_id AND (t.created_at < (SELECT min(created_at) FROM {oldest})
                      OR t.created_at > (SELECT max(created_at) FROM {oldest})))""")
    started = time.perf_counter()
    sql(f"ALTER TABLE bench_timeline_part DETACH PARTITION {oldest}")
    sql(f"DROP TABLE {oldest}")
    print(f"  partitioned copy: DETACH + DROP of one month ({rows:,} timeline rows) took "
          f"{(time.perf_counter() - started) * 1000:.0f} ms, but {spans:,} tickets had entries in it and in other "
          f"months: a month of entries is not a set of closed tickets")


if __name__ == "__main__":
    main()
