"""Events (issue 10): how fast does the desk take events in, and how fast does one worker process them, each
beside a raw-SQL baseline of the same rows in the same run?

Ingestion: POST /api/v1/events/ with batches of 1,000 generic events (Django's test client, the source's token
in `Authorization`; the whole request: authentication, throttle, validation, bulk insert, the outbox row and its
hand-off). Baselines: the very rows the endpoint stored, inserted again by hand (psycopg2 execute_values, and
COPY), in one transaction per 1,000. Goal: >= 2,000 events/s, within 3x of the raw INSERT.

Processing: one process doing what one worker does (the outbox handler "monitoring.process" run by
servicedesk.outbox.outbox_relay, one claimed message after the other; no broker in between) over a mix of
events stored by the endpoint: new alerts, repeats folded into them, and resolves, a few of them critical (which
open incidents, correlated by service). Baseline: the same upserts written by hand in SQL (INSERT ... ON CONFLICT
on the live-alert unique index, UPDATE on resolve, the event marked processed) with no classification, rules,
correlation or incidents. Goal: >= 1,000 events/s.

SD_BENCH_PROFILE=1 adds a cProfile of the processing run (top functions by cumulative and own time).
Figures, not a pass/fail test.
"""

import cProfile
import io
import json
import os
import pstats
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

os.environ["CELERY_BROKER_URL"] = "memory://"  # before Django and Celery read it: no broker in the measurement

from common import ROOT, setup_bench_database  # noqa: E402

setup_bench_database("servicedesk_bench_events")

from django.db import connection, transaction  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import Client  # noqa: E402
from psycopg2.extras import execute_values  # noqa: E402

from incidents.models import Incident  # noqa: E402
from monitoring.models import Alert, Event, EventSource  # noqa: E402
from monitoring.sources import event_source_create  # noqa: E402
from servicedesk.models import OutboxMessage, Service  # noqa: E402
from servicedesk.outbox import outbox_relay  # noqa: E402

BATCH = 1000
INGEST_BATCHES = int(os.environ.get("SD_BENCH_EVENTS_BATCHES", "10"))
PROCESS_EVENTS = int(os.environ.get("SD_BENCH_EVENTS_PROCESS", "5000"))
PROFILE = os.environ.get("SD_BENCH_PROFILE") == "1"
SERVICES = [f"bench-svc-{n}" for n in range(10)]
RUN = datetime.now(UTC).strftime("%H%M%S")  # each run's alerts are new ones


def fresh_source(name: str) -> tuple[EventSource, str]:
    EventSource.objects.filter(name=name).delete()
    return event_source_create(name=name, kind="generic")


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event(alert_id: str, *, status="firing", severity="warning", service=None, at: datetime, n: int) -> dict:
    return {
        "source_id": f"{alert_id}",
        "status": status,
        "severity": severity,
        "summary": f"Disk usage above 90% on {alert_id}",
        "description": "The volume /var fills up.",
        "service": service or "",
        "configuration_item": f"host-{alert_id}",
        "labels": {"alertname": "DiskFull", "instance": f"host-{alert_id}", "team": "ops", "n": str(n)},
        "occurred_at": iso(at),
    }


# --- ingestion -------------------------------------------------------------------------------------------


def ingestion_batches(count: int, tag: str = "ing") -> list[list[dict]]:
    """`count` batches of 1,000 events of distinct alerts (one event per alert id in a batch)."""
    at = datetime.now(UTC)
    return [[event(f"{tag}-{RUN}-{b}-{i}", severity=random.choice(["warning", "minor", "info"]),
                   at=at + timedelta(milliseconds=i), n=i) for i in range(BATCH)] for b in range(count)]


def post(client: Client, token: str, body: dict):
    return client.post("/api/v1/events/", json.dumps(body), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Token {token}")


EVENT_COLUMNS = [f.column for f in Event._meta.concrete_fields if f.column != "id"]
JSON_COLUMNS = {f.column for f in Event._meta.concrete_fields if f.get_internal_type() == "JSONField"}


def stored_rows(source_id: int, baseline_source_id: int) -> list[tuple]:
    """The rows the endpoint stored, as tuples for the baseline (moved to the baseline source)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM monitoring_event WHERE source_id = %s ORDER BY id",
                       [source_id])
        rows = cursor.fetchall()
    at = EVENT_COLUMNS.index("source_id")
    out = []
    for row in rows:
        row = list(row)
        row[at] = baseline_source_id
        for i, column in enumerate(EVENT_COLUMNS):
            if column in JSON_COLUMNS:
                row[i] = json.dumps(row[i])
        out.append(tuple(row))
    return out


def raw_insert(rows: list[tuple]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        execute_values(cursor.cursor, f"INSERT INTO monitoring_event ({', '.join(EVENT_COLUMNS)}) VALUES %s", rows,
                       page_size=BATCH)


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        value = value.isoformat()
    return (str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r"))


def raw_copy(rows: list[tuple]) -> None:
    buffer = io.StringIO("".join("\t".join(_copy_text(v) for v in row) + "\n" for row in rows))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.cursor.copy_expert(f"COPY monitoring_event ({', '.join(EVENT_COLUMNS)}) FROM STDIN", buffer)


def bench_ingestion() -> tuple[float, float]:
    source, token = fresh_source("bench-ingest")
    baseline, _ = fresh_source("bench-ingest-raw")
    client = Client()
    batches = ingestion_batches(INGEST_BATCHES + 1)
    response = post(client, token, {"events": batches.pop()})  # warm-up: imports, first queries, caches
    assert response.status_code == 202, response.content
    Event.objects.filter(source=source).delete()
    OutboxMessage.objects.filter(handler="monitoring.process").delete()

    samples = []
    for body in batches:
        started = time.perf_counter()
        response = post(client, token, {"events": body})
        samples.append(time.perf_counter() - started)
        assert response.status_code == 202, response.content[:500]
    stored = Event.objects.filter(source=source).count()
    assert stored == INGEST_BATCHES * BATCH, stored

    if PROFILE:
        extra = ingestion_batches(1, tag="profiled")[0]
        profiler = cProfile.Profile()
        profiler.enable()
        post(client, token, {"events": extra})
        profiler.disable()
        Event.objects.filter(source=source, external_id__in=[e["source_id"] for e in extra]).delete()
        print_profile(profiler, "one ingestion POST of 1,000 events", 25)

    rows = stored_rows(source.id, baseline.id)
    chunks = [rows[i:i + BATCH] for i in range(0, len(rows), BATCH)]
    values_samples, copy_samples = [], []
    for chunk in chunks:
        started = time.perf_counter()
        raw_insert(chunk)
        values_samples.append(time.perf_counter() - started)
    for chunk in chunks:
        started = time.perf_counter()
        raw_copy(chunk)
        copy_samples.append(time.perf_counter() - started)
    assert Event.objects.filter(source=baseline).count() == 2 * len(rows)

    def rate(samples):
        return BATCH / statistics.median(samples)

    endpoint, values, copy = rate(samples), rate(values_samples), rate(copy_samples)
    print(f"\n== ingestion: {INGEST_BATCHES} POSTs of {BATCH:,} events (median batch)")
    print(f"  POST /api/v1/events/         {endpoint:9,.0f} events/s   "
          f"({statistics.median(samples) * 1000:7.1f} ms a batch, total {sum(samples):.2f}s)")
    print(f"  raw INSERT (execute_values)  {values:9,.0f} events/s   ({statistics.median(values_samples) * 1000:7.1f} ms)")
    print(f"  raw COPY                     {copy:9,.0f} events/s   ({statistics.median(copy_samples) * 1000:7.1f} ms)")
    print(f"  time per event, endpoint / raw INSERT: {values / endpoint:.2f}x   endpoint / COPY: {copy / endpoint:.2f}x"
          f"   (goal: >= 2,000 events/s, within 3x of the raw INSERT)")
    Event.objects.filter(source__in=[source, baseline]).delete()
    return endpoint, values


# --- processing ------------------------------------------------------------------------------------------


def processing_mix(total: int, tag: str) -> tuple[list[list[dict]], dict]:
    """About 20 % new alerts, 70 % repeats of them, 10 % resolves; 2 % of the alerts critical (on ten services,
    so correlation folds them into a few incidents). Each alert's events keep their order; alerts interleave.
    Batches of up to 1,000 with at most one event per alert id in a batch (the API refuses duplicate ids), an
    alert's later events in later batches."""
    rng = random.Random(7)
    alerts = max(1, total // 5)
    resolves = total // 10
    repeats = total - alerts - resolves
    per_alert = {a: 1 for a in range(alerts)}
    for _ in range(repeats):
        per_alert[rng.randrange(alerts)] += 1
    resolved = set(rng.sample(range(alerts), min(resolves, alerts)))
    critical = set(rng.sample(range(alerts), max(1, alerts // 50)))
    at = datetime.now(UTC) - timedelta(minutes=5)  # well within the correlation window when processed
    queues = {a: [("firing", k) for k in range(n)] + ([("resolved", n)] if a in resolved else [])
              for a, n in per_alert.items()}
    order = [a for a, q in queues.items() for _ in q]
    rng.shuffle(order)
    cursor = {a: 0 for a in queues}
    sequence = []
    for a in order:
        status, k = queues[a][cursor[a]]
        cursor[a] += 1
        sequence.append((a, status, k))
    batches: list[list[dict]] = []
    last_batch: dict[int, int] = {}
    first_open = 0
    for i, (a, status, k) in enumerate(sequence):
        index = max(last_batch.get(a, -1) + 1, first_open)  # after this alert's previous event, in a later POST
        while index < len(batches) and len(batches[index]) == BATCH:
            index += 1
        if index == len(batches):
            batches.append([])
        last_batch[a] = index
        batches[index].append(event(f"{tag}-{RUN}-{a}", status=status,
                                    severity="critical" if a in critical else rng.choice(["warning", "minor"]),
                                    service=SERVICES[a % len(SERVICES)] if a in critical else "",
                                    at=at + timedelta(milliseconds=10 * i), n=k))
        while first_open < len(batches) and len(batches[first_open]) == BATCH:
            first_open += 1
    shape = {"events": len(sequence), "alerts": alerts, "repeats": repeats, "resolves": len(resolved),
             "critical alerts": len(critical), "batches": len(batches)}
    return batches, shape


def ingest(batches, token) -> None:
    client = Client()
    for body in batches:
        response = post(client, token, {"events": body})
        assert response.status_code == 202, response.content[:500]


UPSERT = """
INSERT INTO monitoring_alert (source_id, fingerprint, external_id, group_key, status, live, severity, severity_rank,
    classification, summary, description, labels, count, first_seen, last_seen, starts_at, changes, flapping,
    created_at, updated_at)
VALUES (%(source)s, %(fingerprint)s, %(external_id)s, %(group_key)s, 'firing', true, %(severity)s, 3, 'warning',
    %(summary)s, %(description)s, %(labels)s, 1, %(at)s, %(at)s, %(starts_at)s, '[]', false, now(), now())
ON CONFLICT (source_id, fingerprint) WHERE live DO UPDATE SET count = monitoring_alert.count + 1,
    last_seen = GREATEST(monitoring_alert.last_seen, EXCLUDED.last_seen), status = 'firing', cleared_at = NULL,
    updated_at = now()
RETURNING id, (xmax = 0)
"""
CLEAR = """
UPDATE monitoring_alert SET status = 'resolved', cleared_at = %(at)s, updated_at = now()
WHERE source_id = %(source)s AND fingerprint = %(fingerprint)s AND live RETURNING id
"""
MARK = "UPDATE monitoring_event SET processed_at = now(), outcome = %s, alert_id = %s WHERE id = %s"


def raw_process(source_id: int, chunk: int = 100) -> int:
    """The same upserts by hand: one transaction per `chunk` events, in arrival order."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, status, fingerprint, external_id, group_key, severity, summary, description, "
                       "labels::text, occurred_at, starts_at FROM monitoring_event "
                       "WHERE source_id = %s AND processed_at IS NULL ORDER BY id", [source_id])
        events = cursor.fetchall()
    for start in range(0, len(events), chunk):
        with transaction.atomic(), connection.cursor() as cursor:
            for (eid, status, fingerprint, external_id, group_key, severity, summary, description, labels, at,
                 starts_at) in events[start:start + chunk]:
                params = {"source": source_id, "fingerprint": fingerprint, "external_id": external_id,
                          "group_key": group_key, "severity": severity, "summary": summary,
                          "description": description, "labels": labels, "at": at, "starts_at": starts_at}
                if status == "firing":
                    cursor.execute(UPSERT, params)
                    alert_id, inserted = cursor.fetchone()
                    outcome = "opened" if inserted else "repeated"
                else:
                    cursor.execute(CLEAR, params)
                    row = cursor.fetchone()
                    alert_id, outcome = (row[0], "cleared") if row else (None, "no_alert")
                cursor.execute(MARK, [outcome, alert_id, eid])
    return len(events)


INSERT_ALERTS = """
INSERT INTO monitoring_alert (source_id, fingerprint, external_id, group_key, status, live, severity, severity_rank,
    classification, summary, description, labels, count, first_seen, last_seen, starts_at, cleared_at, changes,
    flapping, created_at, updated_at) VALUES %s RETURNING id, fingerprint
"""
INSERT_TEMPLATE = ("(%(source)s, %(fingerprint)s, %(external_id)s, %(group_key)s, %(status)s, true, %(severity)s, 3, "
                   "'warning', %(summary)s, %(description)s, %(labels)s::jsonb, %(count)s, %(first_seen)s, "
                   "%(last_seen)s, %(starts_at)s, %(cleared_at)s, '[]', false, now(), now())")
UPDATE_ALERTS = """
UPDATE monitoring_alert a SET count = v.count, last_seen = v.last_seen, status = v.status, cleared_at = v.cleared_at,
    updated_at = now()
FROM (VALUES %s) AS v (id, count, last_seen, status, cleared_at) WHERE a.id = v.id
"""
MARK_EVENTS = """
UPDATE monitoring_event e SET processed_at = now(), outcome = v.outcome, alert_id = v.alert_id
FROM (VALUES %s) AS v (id, outcome, alert_id) WHERE e.id = v.id
"""


def raw_process_set(source_id: int, chunk: int = BATCH) -> int:
    """The same outcomes set-based: per 1,000 events (one transaction) one fetch of their live alerts, the
    folding in Python, one INSERT of the new alerts, one UPDATE of the others, one UPDATE of the events. What
    processing a whole outbox message at once could cost."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, status, fingerprint, external_id, group_key, severity, summary, description, "
                       "labels::text, occurred_at, starts_at FROM monitoring_event "
                       "WHERE source_id = %s AND processed_at IS NULL ORDER BY id", [source_id])
        events = cursor.fetchall()
    for start in range(0, len(events), chunk):
        part = events[start:start + chunk]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT id, fingerprint, status, count, last_seen, cleared_at FROM monitoring_alert "
                           "WHERE source_id = %s AND live AND fingerprint = ANY(%s) ORDER BY id FOR UPDATE",
                           [source_id, list({e[2] for e in part})])
            alerts = {fp: {"id": i, "status": st, "count": n, "last_seen": seen, "cleared_at": cleared,
                           "dirty": False} for i, fp, st, n, seen, cleared in cursor.fetchall()}
            marks = []
            for (eid, status, fp, external_id, group_key, severity, summary, description, labels, at,
                 starts_at) in part:
                alert = alerts.get(fp)
                if status == "firing":
                    if alert is None:
                        alerts[fp] = alert = {
                            "id": None, "source": source_id, "fingerprint": fp, "external_id": external_id,
                            "group_key": group_key, "status": "firing", "severity": severity, "summary": summary,
                            "description": description, "labels": labels, "count": 1, "first_seen": at,
                            "last_seen": at, "starts_at": starts_at, "cleared_at": None, "dirty": False}
                        outcome = "opened"
                    else:
                        alert.update(count=alert["count"] + 1, last_seen=max(alert["last_seen"], at),
                                     status="firing", cleared_at=None, dirty=True)
                        outcome = "repeated"
                elif alert is None:
                    outcome = "no_alert"
                elif alert["status"] == "resolved":
                    outcome = "duplicate"
                else:
                    alert.update(status="resolved", cleared_at=at, last_seen=max(alert["last_seen"], at), dirty=True)
                    outcome = "cleared"
                marks.append((eid, outcome, fp if alert is not None else None))
            new = [a for a in alerts.values() if a["id"] is None]
            if new:
                for alert_id, fp in execute_values(cursor.cursor, INSERT_ALERTS, new, template=INSERT_TEMPLATE,
                                                   page_size=chunk, fetch=True):
                    alerts[fp]["id"] = alert_id
            changed = [(a["id"], a["count"], a["last_seen"], a["status"], a["cleared_at"])
                       for a in alerts.values() if a["dirty"] and a.get("source") is None]
            if changed:
                execute_values(cursor.cursor, UPDATE_ALERTS, changed, page_size=chunk,
                               template="(%s::bigint, %s::int, %s::timestamptz, %s, %s::timestamptz)")
            execute_values(cursor.cursor, MARK_EVENTS,
                           [(eid, outcome, alerts[fp]["id"] if fp else None) for eid, outcome, fp in marks],
                           template="(%s::bigint, %s, %s::bigint)", page_size=chunk)
    return len(events)


def analyze() -> None:
    """Fresh planner statistics, as autovacuum keeps them on a live desk: without them a table filled a moment
    ago is planned as if it were empty (the live-alert lookup then scans a whole source's alerts)."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE monitoring_event; ANALYZE monitoring_alert")


def process_all() -> int:
    """What one worker does: run every pending "monitoring.process" message, one claim after the other."""
    ran = 0
    while True:
        step = outbox_relay(batch=100_000, min_age=timedelta(0), time_budget=3600)
        ran += step
        if step == 0:
            return ran


def bench_processing() -> tuple[float, float]:
    for name in SERVICES:
        Service.objects.get_or_create(name=name)
    source, token = fresh_source("bench-process")
    baseline, baseline_token = fresh_source("bench-process-raw")
    batches, shape = processing_mix(PROCESS_EVENTS, "p")
    # The baseline first, on its own source: its events are marked processed before the real processing runs,
    # and the messages their ingestion queued are dropped (nothing else may run them).
    ingest(batches, baseline_token)
    OutboxMessage.objects.filter(handler="monitoring.process", state="pending").delete()
    analyze()
    started = time.perf_counter()
    raw_events = raw_process(baseline.id)
    raw_elapsed = time.perf_counter() - started

    set_source, set_token = fresh_source("bench-process-set")
    ingest(batches, set_token)
    OutboxMessage.objects.filter(handler="monitoring.process", state="pending").delete()
    analyze()
    started = time.perf_counter()
    set_events = raw_process_set(set_source.id)
    set_elapsed = time.perf_counter() - started
    assert Event.objects.filter(source=set_source, processed_at__isnull=True).count() == 0

    ingest(batches, token)
    analyze()
    incidents_before = Incident.objects.count()
    profiler = cProfile.Profile() if PROFILE else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    messages = process_all()
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - started
    left = Event.objects.filter(source=source, processed_at__isnull=True).count()
    opened = Incident.objects.count() - incidents_before

    total = shape["events"]
    rate, raw_rate = total / elapsed, raw_events / raw_elapsed
    outcomes = outcomes_of(source)
    print(f"\n== processing: {total:,} events ({shape['alerts']:,} new alerts, {shape['repeats']:,} repeats, "
          f"{shape['resolves']:,} resolves; {shape['critical alerts']} critical alerts on {len(SERVICES)} services), "
          f"one process")
    print(f"  monitoring.process (outbox relay, {messages} messages)  {rate:9,.0f} events/s   ({elapsed:.2f}s; "
          f"{left} left unprocessed; {opened} incidents opened; {Alert.objects.filter(source=source).count():,} "
          f"alerts)")
    print(f"  raw SQL upserts (no rules, no incidents)       {raw_rate:9,.0f} events/s   ({raw_elapsed:.2f}s)")
    print(f"  raw SQL set-based, 1,000 a transaction         {set_events / set_elapsed:9,.0f} events/s   "
          f"({set_elapsed:.2f}s; same outcomes: {outcomes_of(set_source) == outcomes_of(baseline)})")
    set_rate = set_events / set_elapsed
    print(f"  time per event, processing / raw SQL upserts: {raw_rate / rate:.2f}x   processing / set-based raw SQL: "
          f"{set_rate / rate:.2f}x   (goal: >= 1,000 events/s per worker)")
    print(f"  outcomes: {outcomes}")
    if profiler:
        print_profile(profiler, "the processing run", 30)
        print_shares(profiler, sum(v[3] for k, v in pstats.Stats(profiler).stats.items()
                                   if k[2] == "process_events"))
    return rate, raw_rate


SHARES = [("monitoring/processing.py", n) for n in (
    "_process_chunk", "_flush", "rows_update", "_save", "process_one", "_process", "_firing", "_live_alert", "_known", "_alert_open", "_attach_incident", "_note",
    "_resolved", "_incident_recovered", "_change", "ci", "service", "match_rule")] + [
    ("incidents/services/lifecycle.py", "incident_create"), ("incidents/services/lifecycle.py", "incident_resolve"),
    ("django/db/models/sql/compiler.py", "as_sql"), ("django/db/models/base.py", "save"),
    ("django/db/transaction.py", "__enter__"), ("django/db/transaction.py", "__exit__"),
    ("~", "<method 'execute' of 'psycopg2.extensions.cursor' objects>")]


def print_shares(profiler, total: float) -> None:
    """Cumulative time of the functions that matter, as a share of process_events (calls counted once)."""
    stats = pstats.Stats(profiler).stats
    print(f"\n-- where processing's time goes (cumulative, share of process_events: {total:.1f}s under cProfile) --")
    for path, name in SHARES:
        found = [(v[1], v[3]) for (file, _, func), v in stats.items() if func == name and file.endswith(path)
                 or (path == "~" and func == name)]
        calls, cumulative = sum(c for c, _ in found), sum(t for _, t in found)
        print(f"  {path}:{name:<28} {calls:7,d} calls  {cumulative:7.2f}s  {100 * cumulative / total:5.1f} %")


def outcomes_of(source) -> dict:
    return dict(Event.objects.filter(source=source).values_list("outcome").annotate(n=Count("id")).order_by())


def print_profile(profiler, what: str, lines: int) -> None:
    import django

    site = os.path.dirname(os.path.dirname(django.__file__)) + "/"
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(lines)
        print(f"\n-- cProfile of {what}, by {order} --")
        print(out.getvalue().replace(str(ROOT) + "/", "").replace(site, ""))


def main():
    print(f"PostgreSQL {connection.cursor().connection.server_version}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    bench_ingestion()
    bench_processing()


main()
