"""Durability of event ingestion and processing, with real processes: the test's own redis-server (stopped and
started by the test), `celery -A servicedesk worker` processes, one of them killed with SIGKILL in the middle
of a large batch. Ingestion answers 202 and stores the events whatever the broker does; the outbox re-drives
what was left; every event is processed exactly once; processing an event again changes nothing."""

import json
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Count

from incidents.models import Channel, Incident
from monitoring.models import Alert, Event
from monitoring.sources import event_source_create
from servicedesk.models import OutboxMessage, Service
from servicedesk.outbox import outbox_relay
from tests.peers import SmtpSink, free_port
from tests.workers import RedisServer, celery_broker, celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]

SERVICES = ["checkout", "payments", "search", "mail"]


@pytest.fixture(autouse=True)
def _resolution_code(db):
    """Recoveries resolve with code "fixed", seeded by incidents' migration; a transactional test starts from an
    emptied database, so bring it back."""
    from incidents.models import ResolutionCode

    ResolutionCode.objects.get_or_create(code="fixed", defaults={"label": "Fixed"})


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event(n: int, *, repeat: int = 0, status: str = "firing", critical: bool = False, base: datetime) -> dict:
    """Alert `n`'s `repeat`-th event. Critical alerts name one of four services (correlated into one incident
    each); the others are warnings (an alert, no incident)."""
    return {
        "source_id": f"disk-{n}",
        "status": status,
        "severity": "critical" if critical else "warning",
        "summary": f"Disk almost full on host-{n}",
        "service": SERVICES[n % len(SERVICES)] if critical else "",
        "labels": {"alertname": "DiskFull", "instance": f"host-{n}"},
        "occurred_at": iso(base + timedelta(seconds=repeat, milliseconds=n)),
    }


def post(client, token: str, events: list[dict]):
    return client.post("/api/v1/events/", json.dumps({"events": events}), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Token {token}")


def unprocessed(source) -> int:
    return Event.objects.filter(source=source, processed_at__isnull=True).count()


def test_with_the_broker_down_ingestion_answers_202_and_stores_and_the_relay_processes_the_events_later(client):
    source, token = event_source_create(name="nagios", kind="generic")
    base = datetime.now(UTC) - timedelta(minutes=5)
    events = [event(n, base=base, critical=n < 4) for n in range(40)]

    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):  # nothing listens there
        started = time.monotonic()
        response = post(client, token, events)
        elapsed = time.monotonic() - started
        assert response.status_code == 202, response.content
        assert elapsed < 5, f"the request waited {elapsed:.1f}s on the dead broker"
        assert Event.objects.filter(source=source).count() == 40
        assert unprocessed(source) == 40
        assert OutboxMessage.objects.filter(handler="monitoring.process", state="pending").exists()
        assert not Alert.objects.exists()

        # Beat's relay, in this process, once the messages are old enough (min_age 0 here).
        outbox_relay(min_age=timedelta(0))

    assert unprocessed(source) == 0
    assert not Event.objects.filter(source=source, outcome__in=["", Event.Outcome.ERROR]).exists()
    assert Alert.objects.filter(source=source, status="firing").count() == 40
    assert Incident.objects.filter(channel=Channel.MONITORING).count() == 4  # one per service (correlated)
    assert not OutboxMessage.objects.filter(handler="monitoring.process").exclude(state="done").exists()


@pytest.mark.worker
def test_events_stored_while_redis_was_down_are_processed_by_a_real_worker_when_it_is_back(client, tmp_path):
    source, token = event_source_create(name="nagios", kind="generic")
    base = datetime.now(UTC) - timedelta(minutes=5)
    redis = RedisServer()
    redis.start()
    with SmtpSink() as smtp, celery_broker(redis.url) as app:
        assert app.connection_for_write().ensure_connection(max_retries=1)  # the broker is there...
        redis.stop()  # ...and now it is gone
        response = post(client, token, [event(n, base=base, critical=n == 0) for n in range(25)])
        assert response.status_code == 202, response.content
        assert unprocessed(source) == 25

        redis.start()  # back, empty: nothing was queued in it
        try:
            with celery_worker(broker_url=redis.url, smtp_port=smtp.port, tmp_path=tmp_path):
                time.sleep(2)
                assert unprocessed(source) == 25, "processed before anything re-drove the events"
                app.send_task("servicedesk.tasks.outbox_relay", kwargs={"min_age_seconds": 0})  # as beat does
                assert wait_for(lambda: unprocessed(source) == 0, timeout=60), (
                    (tmp_path / "worker.log").read_text()[-3000:])
        finally:
            redis.stop()
    assert Alert.objects.filter(source=source).count() == 25
    assert Incident.objects.filter(channel=Channel.MONITORING).count() == 1


@pytest.mark.worker
def test_a_worker_killed_in_the_middle_of_a_large_batch_loses_nothing_and_does_nothing_twice(
        client, smtp, tmp_path, settings):
    """3,000 events in 3 POSTs (1,000 alerts, each firing once per POST; 20 critical on four services). The
    worker is SIGKILLed once it has processed some; a new worker and the relay finish the job."""
    from servicedesk.celery import app

    for name in SERVICES:
        Service.objects.create(name=name)
    source, token = event_source_create(name="nagios", kind="generic")
    base = datetime.now(UTC) - timedelta(minutes=10)
    critical = {50 * k + k % len(SERVICES) for k in range(20)}  # 20 alerts, five per service (n % 4)
    app.control.purge()
    for repeat in range(3):
        response = post(client, token, [event(n, repeat=repeat, base=base, critical=n in critical)
                                        for n in range(1000)])
        assert response.status_code == 202, response.content[:500]
    assert unprocessed(source) == 3000

    with celery_worker(broker_url=settings.CELERY_BROKER_URL, smtp_port=smtp.port, tmp_path=tmp_path) as proc:
        started = time.monotonic()
        assert wait_for(lambda: unprocessed(source) < 3000, timeout=60, interval=0.02), "the worker processed nothing"
        os.kill(proc.pid, signal.SIGKILL)  # this test's worker, by its PID
        proc.wait(timeout=10)
    left = unprocessed(source)
    print(f"killed {time.monotonic() - started:.1f}s after the worker was up, {left} events left")
    assert 0 < left < 3000, f"{left} events left: the kill did not land in the middle of the work"

    # The killed worker's claim died with its connection: the relay (and a new worker) take it from there.
    second = tmp_path / "second"
    second.mkdir()
    with celery_worker(broker_url=settings.CELERY_BROKER_URL, smtp_port=smtp.port, tmp_path=second):
        started = time.monotonic()
        app.send_task("servicedesk.tasks.outbox_relay", kwargs={"min_age_seconds": 0})
        assert wait_for(lambda: unprocessed(source) == 0, timeout=120), (
            f"{unprocessed(source)} left\n{(second / 'worker.log').read_text()[-3000:]}")
        print(f"the rest processed in {time.monotonic() - started:.1f}s")
        # Stray duplicate hand-offs of every message arrive too, and beat runs the relay again.
        for message_id in OutboxMessage.objects.filter(handler="monitoring.process").values_list("id", flat=True):
            app.send_task("servicedesk.tasks.outbox_process", args=[message_id])
        app.send_task("servicedesk.tasks.outbox_relay", kwargs={"min_age_seconds": 0})
        settle(app)

    events = Event.objects.filter(source=source)
    outcomes = dict(events.values_list("outcome").annotate(n=Count("id")).order_by())
    assert outcomes == {Event.Outcome.ALERT_OPENED: 1000, Event.Outcome.ALERT_UPDATED: 2000}, outcomes
    alerts = Alert.objects.filter(source=source)
    assert alerts.count() == 1000
    assert set(alerts.values_list("count", flat=True)) == {3}  # each repeat folded exactly once
    assert not events.filter(alert__isnull=True).exists()
    incidents = Incident.objects.filter(channel=Channel.MONITORING)
    assert incidents.count() == len(SERVICES)  # no duplicate incidents
    for service in Service.objects.filter(name__in=SERVICES):
        assert alerts.filter(service=service, incident__isnull=False).values("incident").distinct().count() == 1
    assert alerts.filter(incident__isnull=False).count() == len(critical)
    assert not OutboxMessage.objects.filter(handler="monitoring.process").exclude(state="done").exists()


def settle(app) -> None:
    """Wait until the (solo) worker has run everything queued before this point."""
    from servicedesk.models import Heartbeat

    Heartbeat.objects.all().delete()
    app.send_task("servicedesk.tasks.worker_heartbeat")
    assert wait_for(lambda: Heartbeat.objects.exists(), timeout=60), "the worker stopped consuming"


def snapshot(source) -> dict:
    """Everything processing writes, as plain values."""
    from servicedesk.models import TimelineEntry

    return {
        "alerts": list(Alert.objects.filter(source=source).order_by("id").values_list(
            "id", "status", "live", "count", "last_seen", "cleared_at", "incident_id", "changes", "flapping")),
        "events": list(Event.objects.filter(source=source).order_by("id").values_list(
            "id", "outcome", "processed_at", "alert_id", "error")),
        "incidents": list(Incident.objects.order_by("id").values_list("id", "status", "version")),
        "timeline": TimelineEntry.objects.count(),
        "outbox": OutboxMessage.objects.count(),
    }


def test_processing_events_twice_changes_nothing_the_second_time(client):
    """The processing entry point (monitoring.processing.process_events, what the outbox handler calls) run
    again over events it has processed: nothing moves. Then the outbox handler itself runs a done message's
    events again by hand."""
    from monitoring.processing import process_events

    Service.objects.create(name="checkout")
    source, token = event_source_create(name="nagios", kind="generic")
    base = datetime.now(UTC) - timedelta(minutes=5)
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):  # no worker gets there first
        first = post(client, token, [event(0, base=base, critical=True), event(1, base=base)])
        second = post(client, token, [event(0, repeat=1, base=base, critical=True),
                                      event(1, repeat=1, base=base, status="resolved")])
    ids = first.json()["ids"] + second.json()["ids"]
    assert len(ids) == 4 and unprocessed(source) == 4

    counts = process_events(ids)
    assert counts == {Event.Outcome.ALERT_OPENED: 2, Event.Outcome.ALERT_UPDATED: 1, Event.Outcome.ALERT_CLEARED: 1}
    after_once = snapshot(source)
    alert = Alert.objects.get(source=source, fingerprint="disk-0")
    assert (alert.count, alert.status, alert.incident.status) == (2, "firing", "new")
    assert Alert.objects.get(source=source, fingerprint="disk-1").status == "resolved"

    assert process_events(ids) == {}  # each event is skipped: processed already
    assert process_events(list(reversed(ids))) == {}
    assert snapshot(source) == after_once

    # The outbox messages of these events (still pending: the broker was away) run now: their events are
    # processed already, so nothing moves; and once done, a stray second delivery does not run them again.
    from servicedesk.outbox import outbox_process

    messages = list(OutboxMessage.objects.filter(handler="monitoring.process").values_list("id", flat=True))
    assert [outbox_process(message_id) for message_id in messages] == ["done", "done"]
    assert [outbox_process(message_id) for message_id in messages] == [None, None]
    outbox_relay(min_age=timedelta(0))
    assert {k: v for k, v in snapshot(source).items() if k != "outbox"} == {
        k: v for k, v in after_once.items() if k != "outbox"}


# --- processing and ingestion of one source at the same time ------------------------------------------------
# Processing locks only the event rows it claims (FOR UPDATE OF): were it to lock the joined source row too, every
# ingestion of that source (its foreign-key check takes FOR KEY SHARE on that row) would wait until the worker's
# transaction, a whole chunk of events, ends.


def _hold(target, *, ready: threading.Event, release: threading.Event, errors: list):
    """Run `target()` in a transaction of its own thread and keep it open until `release` is set."""
    from django.db import connection, transaction

    def run():
        try:
            with transaction.atomic():
                target()
                ready.set()
                release.wait(10)  # the test releases it sooner unless something waits on it
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
            ready.set()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_ingestion_answers_at_once_while_a_worker_is_in_the_middle_of_processing_the_same_source(client):
    from monitoring.processing import process_events

    source, token = event_source_create(name="nagios", kind="generic")
    base = datetime.now(UTC) - timedelta(minutes=5)
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        ids = post(client, token, [event(n, base=base) for n in range(20)]).json()["ids"]
        ready, release, errors = threading.Event(), threading.Event(), []
        # A worker in the middle of an outbox message: its transaction is open (a batch of 1,000 takes seconds).
        thread = _hold(lambda: process_events(ids), ready=ready, release=release, errors=errors)
        try:
            assert ready.wait(30) and not errors, errors
            started = time.monotonic()
            response = post(client, token, [event(n, repeat=1, base=base) for n in range(20)])
            elapsed = time.monotonic() - started
        finally:
            release.set()
            thread.join(30)
    assert response.status_code == 202
    assert elapsed < 3, f"the POST waited {elapsed:.1f}s for the worker's transaction to end"


def test_events_claimed_while_an_ingestion_of_their_source_is_in_flight_are_processed_not_skipped(client):
    from monitoring.ingest import events_store, parse_generic
    from monitoring.processing import process_events

    source, token = event_source_create(name="nagios", kind="generic")
    base = datetime.now(UTC) - timedelta(minutes=5)
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        ids = post(client, token, [event(n, base=base) for n in range(20)]).json()["ids"]
        ready, release, errors = threading.Event(), threading.Event(), []
        # Another POST of the same source, between its INSERT and its COMMIT.
        more = [event(n, repeat=1, base=base) for n in range(20)]
        thread = _hold(lambda: events_store(parse_generic(source, {"events": more})), ready=ready,
                       release=release, errors=errors)
        try:
            assert ready.wait(30) and not errors, errors
            counts = process_events(ids)
        finally:
            release.set()
            thread.join(30)
    assert counts == {Event.Outcome.ALERT_OPENED: 20}, counts
    assert not Event.objects.filter(id__in=ids, processed_at__isnull=True).exists()
