"""What a Prometheus scrape of /metrics costs as history grows (servicedesk.metrics).

Fills its own database (servicedesk_bench_metrics, kept between runs) first to 10,000 and then to
SD_BENCH_LARGE (default 1,000,000) rows in each of the tables our figures read -- incidents (2 % open), monitoring
events (0.1 % unprocessed), outbox messages (0.1 % pending) and SLA clocks (20 % running, 100 past due) --
cloned by PostgreSQL itself (INSERT ... SELECT over generate_series) from rows made by the real services. At each
size it times our own figures alone (collect_figures) and the whole /metrics answer through Django (with
django-prometheus's metrics), interleaved, and prints the plans of the queries, which must read indexes only.

Figures, not a pass/fail test: `python3 dev.py bench bench/bench_metrics.py`.
"""

import os
import statistics
import time

from common import setup_bench_database

setup_bench_database("servicedesk_bench_metrics")

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from incidents.models import Incident  # noqa: E402
from monitoring.ingest import ingest  # noqa: E402
from monitoring.models import Event  # noqa: E402
from monitoring.sources import event_source_create  # noqa: E402
from servicedesk.metrics import collect_figures  # noqa: E402
from servicedesk.models import OutboxMessage  # noqa: E402
from sla.models import SlaClock  # noqa: E402

SIZES = [10_000, int(os.environ.get("SD_BENCH_LARGE", "1000000"))]
ROUNDS = int(os.environ.get("SD_BENCH_ROUNDS", "30"))


def templates() -> dict[str, int]:
    """One row of each kind made by the real services, to clone."""
    from django.contrib.auth import get_user_model

    from incidents.services import incident_create
    from sla.defaults import ensure_defaults

    ensure_defaults()
    user, _ = get_user_model().objects.get_or_create(username="bench-requester")
    incident = Incident.objects.order_by("id").first() or incident_create(requester=user, created_by=user,
                                                                          title="Bench incident")
    source = Event.objects.order_by("id").values_list("source", flat=True).first()
    if source is None:
        source, _ = event_source_create(name="bench", kind="generic")
        ingest(source, {"source_id": "bench-1", "status": "firing", "severity": "info", "summary": "bench"},
               kind="generic")
    outbox = OutboxMessage.objects.order_by("id").first() or OutboxMessage.objects.create(handler="bench.noop")
    clock = SlaClock.objects.order_by("id").first()
    return {"incident": incident.id, "event": Event.objects.order_by("id").first().id, "outbox": outbox.id,
            "clock": clock.id}


def clone(model, template_id: int, start: int, stop: int, overrides: dict[str, str]) -> None:
    """Rows start..stop of `model`, copies of the template with `overrides` (SQL over g) in their columns."""
    columns = [f.column for f in model._meta.concrete_fields if f.column != "id"]
    select = ", ".join(overrides.get(c, f'"{c}"') for c in columns).replace("%", "%%")
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO {model._meta.db_table} ({", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)}) '
            f"SELECT {select} FROM {model._meta.db_table}, generate_series(%s, %s) AS g WHERE id = %s",
            [start, stop, template_id])


def fill(size: int, ids: dict[str, int]) -> None:
    have = Incident.objects.count()
    if have >= size:
        return
    start, stop = have + 1, size
    ago = "now() - (g % 1000) * interval '1 hour'"
    clone(Incident, ids["incident"], start, stop, {
        "number": "'BEN' || lpad(g::text, 9, '0')",
        "status": "CASE WHEN g % 50 = 0 THEN 'in_progress' ELSE 'closed' END",
        "created_at": ago, "updated_at": ago})
    clone(Event, ids["event"], start, stop, {
        "dedup_key": "md5(g::text)", "fingerprint": "md5(g::text)", "received_at": ago,
        "processed_at": f"CASE WHEN g % 1000 = 0 THEN NULL ELSE {ago} END", "outcome": "'recorded'"})
    clone(OutboxMessage, ids["outbox"], start, stop, {
        "state": "CASE WHEN g % 1000 = 0 THEN 'pending' ELSE 'done' END", "created_at": ago,
        "next_attempt_at": f"CASE WHEN g % 1000 = 0 THEN now() + interval '1 hour' ELSE {ago} END",
        "processed_at": f"CASE WHEN g % 1000 = 0 THEN NULL ELSE {ago} END"})
    clone(SlaClock, ids["clock"], start, stop, {
        "ticket_type": "'stored'", "ticket_id": "g",
        "state": "CASE WHEN g % 5 = 0 THEN 'running' ELSE 'met' END",
        "running_since": "CASE WHEN g % 5 = 0 THEN now() - interval '1 hour' END",
        "due_at": "CASE WHEN g % 5 = 0 THEN now() + interval '2 days' + (g % 86400) * interval '1 second' END",
        "warn_at": "CASE WHEN g % 5 = 0 THEN now() + interval '1 day' + (g % 86400) * interval '1 second' END",
        "warned_at": "NULL", "breached_at": "NULL",
        "stopped_at": "CASE WHEN g % 5 = 0 THEN NULL ELSE now() - interval '20 hours' END"})
    # 100 running clocks past their deadline, so the sweep-lag queries find something.
    SlaClock.objects.filter(ticket_type="stored", state="running", ticket_id__lte=500).update(
        due_at=timezone.now() - timezone.timedelta(minutes=5))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load


def plans() -> list[str]:
    """EXPLAIN ANALYZE of every query of a scrape: each should name an index; with the time the database spent
    on it (best of 5), which the machine's load disturbs far less than the wall clock."""
    with CaptureQueriesContext(connection) as captured:
        collect_figures()
    lines, total = [], 0.0
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            best = float("inf")
            for _ in range(5):
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query["sql"])
                plan = cursor.fetchone()[0][0]
                best = min(best, plan["Execution Time"])
            total += best
            node = plan["Plan"]
            while node.get("Plans") and node["Node Type"] in ("Aggregate", "Limit", "Result"):
                node = node["Plans"][0]
            where = node.get("Index Name") or node.get("Relation Name", "")
            lines.append(f"    {best:7.3f} ms  {node['Node Type']} {where}")
    lines.append(f"    {total:7.3f} ms  in the database for the whole scrape")
    return lines


def main() -> None:
    ids = templates()
    client = Client(REMOTE_ADDR="127.0.0.1")
    client.get("/metrics")  # warm: imports, the Redis connection
    results = {}
    for size in SIZES:
        started = time.perf_counter()
        fill(size, ids)
        print(f"\n== {Incident.objects.count():,} incidents, {Event.objects.count():,} events, "
              f"{OutboxMessage.objects.count():,} outbox messages, {SlaClock.objects.count():,} SLA clocks "
              f"(filled in {time.perf_counter() - started:.0f}s)")
        ours, whole = [], []
        for _ in range(ROUNDS):  # interleaved, so a busy moment of the machine hits both alike
            t = time.perf_counter()
            collect_figures()
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            response = client.get("/metrics")
            whole.append(time.perf_counter() - t)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as captured:
            collect_figures()
        results[size] = (statistics.median(ours), statistics.median(whole))
        print(f"  our figures: median {statistics.median(ours) * 1000:6.1f} ms, p95 "
              f"{sorted(ours)[int(len(ours) * 0.95) - 1] * 1000:6.1f} ms, {len(captured)} queries")
        print(f"  /metrics   : median {statistics.median(whole) * 1000:6.1f} ms, p95 "
              f"{sorted(whole)[int(len(whole) * 0.95) - 1] * 1000:6.1f} ms ({len(response.content):,} bytes)")
        print("  plans:")
        print("\n".join(plans()))
    small, large = SIZES
    print(f"\nour figures {large:,} / {small:,}: {results[large][0] / results[small][0]:.2f}x; "
          f"/metrics: {results[large][1] / results[small][1]:.2f}x")


main()
