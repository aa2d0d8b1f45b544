"""Celery queues per kind of work (settings.SERVICEDESK_QUEUES): outbox messages are handed to the queue their
handler declares and relayed there, so a worker group that consumes only "sla" runs SLA work while a flood of
monitoring events waits on "events". Real Redis broker, real `celery worker` processes."""

import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.conf import settings
from django.db import transaction

from monitoring.ingest import events_store
from monitoring.models import Event
from monitoring.sources import event_source_create
from servicedesk import outbox
from servicedesk.celery import app as celery_app
from servicedesk.models import OutboxMessage
from servicedesk.outbox import outbox_enqueue, outbox_handler, outbox_relay, queue_for
from sla.retime import retime_enqueue
from tests.workers import celery_worker, wait_for

RAN: list[str] = []


@outbox_handler("tests.scale.on_sla", queue="sla")
def _on_sla(message):
    RAN.append(message.handler)


@outbox_handler("tests.scale.on_default")
def _on_default(message):
    RAN.append(message.handler)


@celery_app.task(name="sla.tasks.tests_scale_probe")  # routed to "sla" by CELERY_TASK_ROUTES ("sla.tasks.*")
def _sla_probe(**kwargs):
    RAN.append("task:sla.tasks.tests_scale_probe")


@celery_app.task(name="servicedesk.tasks.tests_scale_probe")  # routed nowhere: the default queue
def _default_probe(**kwargs):
    RAN.append("task:servicedesk.tasks.tests_scale_probe")


def broker_redis():
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def test_the_queues_are_the_default_one_and_one_per_kind_of_work():
    assert settings.SERVICEDESK_QUEUES == ["servicedesk", "notifications", "sla", "events", "fulfilment"]
    # A worker started without -Q consumes every one of them (the local run, the tests' worker).
    assert [q.name for q in celery_app.amqp.queues.consume_from.values()] == settings.SERVICEDESK_QUEUES


@pytest.mark.parametrize(("handler", "queue"), [
    ("email.send", "notifications"),
    ("webhook.deliver", "notifications"),
    ("email.inbound", "notifications"),
    ("requests.password_reset_mail", "notifications"),
    ("sla.escalate", "sla"),
    ("sla.retime", "sla"),
    ("monitoring.process", "events"),
    ("request.fulfil", "fulfilment"),
    ("problems.resolve_incidents", "servicedesk"),
    ("no.such.handler", "servicedesk"),
])
def test_each_outbox_handler_declares_its_queue(handler, queue):
    assert queue_for(handler) == queue


def test_a_task_run_through_the_outbox_goes_to_the_queue_its_task_is_routed_to():
    assert queue_for("task.run", {"task": "sla.tasks.sla_sweep", "kwargs": {}}) == "sla"
    assert queue_for("task.run", {"task": "monitoring.tasks.monitoring_events_redrive"}) == "events"
    assert queue_for("task.run", {"task": "servicedesk.tasks.outbox_purge"}) == "servicedesk"


def test_beat_tasks_are_routed_to_their_queue_and_the_relay_runs_once_per_queue():
    route = celery_app.amqp.router.route
    assert route({}, "sla.tasks.sla_sweep")["queue"].name == "sla"
    assert route({}, "monitoring.tasks.monitoring_flap_settle")["queue"].name == "events"
    assert route({}, "requests_app.tasks.fulfilment_sweep")["queue"].name == "fulfilment"
    assert route({}, "email_channel.tasks.mailboxes_poll")["queue"].name == "notifications"
    assert route({}, "servicedesk.tasks.worker_heartbeat")["queue"].name == "servicedesk"
    relays = {name: entry for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
              if entry["task"] == "servicedesk.tasks.outbox_relay"}
    assert {entry["options"]["queue"] for entry in relays.values()} == set(settings.SERVICEDESK_QUEUES)
    assert all(entry["kwargs"]["queue"] == entry["options"]["queue"] for entry in relays.values())
    assert relays["outbox-relay"]["kwargs"]["queue"] == "servicedesk"  # the entry's old name stays the default's


def test_a_handler_naming_an_unknown_queue_is_refused_with_the_queue_named():
    with pytest.raises(ValueError, match="queue 'sla-fast' is not one of settings.SERVICEDESK_QUEUES"):
        outbox_handler("tests.scale.bad", queue="sla-fast")


@pytest.mark.django_db
def test_messages_are_handed_off_on_commit_to_their_handlers_queue(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        sla = outbox_enqueue("tests.scale.on_sla", {})
        plain = outbox_enqueue("tests.scale.on_default", {})
        outbox.outbox_enqueue_many("tests.scale.on_sla", [{"n": n} for n in range(3)])
    assert [(cb.func, cb.args, cb.keywords) for cb in callbacks[:2]] == [
        (outbox.hand_off, (sla.id,), {"queue": "sla"}),
        (outbox.hand_off, (plain.id,), {"queue": "servicedesk"}),
    ]
    assert callbacks[2].func is outbox.hand_off_chunk and callbacks[2].keywords == {"queue": "sla"}


@pytest.mark.django_db
def test_a_hand_off_lands_in_the_redis_list_of_its_queue():
    client = broker_redis()
    celery_app.control.purge()
    before = {q: client.llen(q) for q in settings.SERVICEDESK_QUEUES}
    assert outbox.hand_off(10**9, queue="sla") is True
    assert outbox.hand_off_chunk([10**9 + 1, 10**9 + 2], queue="events") is True
    after = {q: client.llen(q) for q in settings.SERVICEDESK_QUEUES}
    celery_app.control.purge()
    assert {q: after[q] - before[q] for q in after} == {"servicedesk": 0, "notifications": 0, "sla": 1,
                                                         "events": 1, "fulfilment": 0}


@pytest.mark.django_db
def test_the_relay_of_a_queue_runs_only_the_messages_of_that_queues_handlers():
    RAN.clear()
    with transaction.atomic():
        outbox_enqueue("tests.scale.on_sla", {})
        outbox_enqueue("tests.scale.on_default", {})
        outbox_enqueue("no.such.handler", {})
    assert outbox_relay(min_age=timedelta(0), queue="events") == 0
    assert outbox_relay(min_age=timedelta(0), queue="sla") == 1
    assert RAN == ["tests.scale.on_sla"]
    # The default queue's relay takes everything no other queue claims, unknown handlers included (they fail).
    assert outbox_relay(min_age=timedelta(0), queue="servicedesk") == 2
    assert RAN == ["tests.scale.on_sla", "tests.scale.on_default"]
    assert dict(OutboxMessage.objects.values_list("handler", "state")) == {
        "tests.scale.on_sla": "done", "tests.scale.on_default": "done", "no.such.handler": "failed"}


@pytest.mark.django_db
def test_a_task_run_message_is_relayed_on_the_queue_its_task_is_handed_off_to():
    """queue_for sends a "task.run" message to its task's routed queue; the relay of that queue, not the
    default one's, re-drives it (an SLA task waits on no backlog of the default queue)."""
    RAN.clear()
    with transaction.atomic():
        outbox_enqueue("task.run", {"task": "sla.tasks.tests_scale_probe", "kwargs": {}})
        outbox_enqueue("task.run", {"task": "servicedesk.tasks.tests_scale_probe", "kwargs": {}})
    assert queue_for("task.run", {"task": "sla.tasks.tests_scale_probe"}) == "sla"
    assert outbox_relay(min_age=timedelta(0), queue="events") == 0
    assert outbox_relay(min_age=timedelta(0), queue="servicedesk") == 1
    assert RAN == ["task:servicedesk.tasks.tests_scale_probe"]
    assert outbox_relay(min_age=timedelta(0), queue="sla") == 1
    assert RAN == ["task:servicedesk.tasks.tests_scale_probe", "task:sla.tasks.tests_scale_probe"]
    assert set(OutboxMessage.objects.values_list("state", flat=True)) == {"done"}


def _flood(source, *, posts: int, per_post: int) -> None:
    base = datetime.now(UTC) - timedelta(minutes=5)
    for p in range(posts):
        with transaction.atomic():
            events_store([{
                "source_id": source.id, "received_at": base, "external_id": f"flood-{p}-{n}", "status": "firing",
                "severity": "warning", "summary": f"Disk almost full on host-{p}-{n}", "description": "",
                "service_name": "", "ci_name": "", "labels": {"instance": f"host-{p}-{n}"},
                "occurred_at": base + timedelta(milliseconds=n), "starts_at": None,
                "fingerprint": f"fp-{p}-{n}", "group_key": "", "dedup_key": f"fp-{p}-{n}", "raw": {},
            } for n in range(per_post)])


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_flood_of_events_does_not_delay_sla_work_on_its_own_worker(smtp, tmp_path):
    """One worker consumes only "events", another only "sla". Thousands of events are queued; an SLA message
    written after them runs at once on the SLA worker while the events are still being worked through."""
    source, _ = event_source_create(name="flood", kind="generic")
    celery_app.control.purge()
    (tmp_path / "events").mkdir()
    (tmp_path / "sla").mkdir()
    with celery_worker(broker_url=settings.CELERY_BROKER_URL, smtp_port=smtp.port, tmp_path=tmp_path / "events",
                       args=["-Q", "events"]):
        _flood(source, posts=300, per_post=20)
        pending = OutboxMessage.objects.filter(handler="monitoring.process", state="pending")
        assert pending.count() > 100, "the flood was processed before the test could look"
        with transaction.atomic():
            retime_enqueue(calendar_id=0, reason="test: an SLA message behind the flood")
        sla = OutboxMessage.objects.get(handler="sla.retime")
        time.sleep(3)
        sla.refresh_from_db()
        assert sla.state == "pending", "the events worker took SLA work: the routing is wrong"

        with celery_worker(broker_url=settings.CELERY_BROKER_URL, smtp_port=smtp.port, tmp_path=tmp_path / "sla",
                           args=["-Q", "sla"]):
            started = time.monotonic()
            assert wait_for(lambda: OutboxMessage.objects.get(id=sla.id).state == "done", timeout=30,
                            interval=0.05), (tmp_path / "sla" / "worker.log").read_text()[-3000:]
            waited = time.monotonic() - started
            still_pending = pending.count()
            unprocessed = Event.objects.filter(source=source, processed_at__isnull=True).count()
        print(f"SLA message done {waited:.2f}s after its worker was up; {still_pending} event messages "
              f"({unprocessed} events) still waiting on the events queue")
        assert still_pending > 0 and unprocessed > 0, "the flood was gone before the SLA work ran: nothing shown"
        assert waited < 10
    celery_app.control.purge()
