"""The outbox: rows written with the change, handed off on commit, claimed with SKIP LOCKED, re-driven by
the relay. Real PostgreSQL (two connections where two workers are meant) and a real Redis broker."""

import logging
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from servicedesk import outbox
from servicedesk.models import AuditLog, Heartbeat, Organisation, OutboxMessage
from servicedesk.outbox import Fail, Retry, outbox_enqueue, outbox_handler, outbox_process, outbox_relay
from servicedesk.tasking import enqueue_on_commit
from servicedesk.tasks import worker_heartbeat
from tests.workers import RedisServer, celery_broker

pytestmark = pytest.mark.django_db

ran: list[tuple[int, str]] = []  # (message id, thread name) of every run of the test handlers
ran_lock = threading.Lock()


class Flaky(Exception):
    pass


@outbox_handler("tests.record")
def _record(message):
    with ran_lock:
        ran.append((message.id, threading.current_thread().name))
    time.sleep(message.payload.get("sleep", 0))


@outbox_handler("tests.write", retry_on=(Flaky,), max_attempts=3)
def _write(message):
    """Writes an organisation, then does what the payload says."""
    Organisation.objects.create(name=f"org-{message.id}-{message.attempts}")
    outcome = message.payload["then"]
    if outcome == "raise-flaky":
        raise Flaky("try later")
    if outcome == "raise-bug":
        raise KeyError("bug")
    if outcome == "retry":
        return Retry("503 from the peer")
    if outcome == "fail":
        return Fail("410 gone")
    return None


def _give_up_badly(message, error):
    Organisation.objects.create(name=f"give-up-{message.id}")
    raise RuntimeError("the give-up hook has a bug")


@outbox_handler("tests.give-up-badly", retry_on=(Flaky,), max_attempts=1, on_give_up=_give_up_badly)
def _always_flaky(message):
    raise Flaky("down")


@pytest.fixture(autouse=True)
def _clear_runs():
    ran.clear()
    yield
    ran.clear()


def make_message(handler="tests.record", payload=None, *, age=timedelta(minutes=5), **fields) -> OutboxMessage:
    created = timezone.now() - age
    return OutboxMessage.objects.create(handler=handler, payload=payload or {}, created_at=created,
                                        next_attempt_at=fields.pop("next_attempt_at", created), **fields)


# --- writing and handing off -----------------------------------------------------------------------------


def test_it_writes_the_message_in_the_callers_transaction(django_capture_on_commit_callbacks):
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=False) as callbacks:
        with transaction.atomic():
            outbox_enqueue("tests.record", {"n": 1})
            raise RuntimeError("rolled back")
    assert not OutboxMessage.objects.exists()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = outbox_enqueue("tests.record", {"when": timezone.now()})
    assert message.state == "pending" and message.attempts == 0
    assert isinstance(message.payload["when"], str)  # only JSON values reach the row
    assert [(cb.func, cb.args) for cb in callbacks] == [(outbox.hand_off, (message.id,))]


def test_many_messages_written_together_go_to_the_broker_in_chunks(django_capture_on_commit_callbacks):
    from servicedesk.outbox import outbox_enqueue_many
    from servicedesk.tasks import outbox_process_many

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        messages = outbox_enqueue_many("tests.record", [{"n": n} for n in range(120)])
    assert [cb.func for cb in callbacks] == [outbox.hand_off_chunk] * 3
    chunks = [cb.args[0] for cb in callbacks]
    assert [len(c) for c in chunks] == [50, 50, 20]
    assert sum(chunks, []) == [m.id for m in messages]
    # What the worker runs for a chunk: each message claimed and run once, a second run finds nothing to do.
    assert outbox_process_many(chunks[2]) == 20
    assert OutboxMessage.objects.filter(id__in=chunks[2], state="done").count() == 20
    assert outbox_process_many(chunks[2]) == 0


def test_a_delayed_message_is_not_handed_off_but_waits_for_the_relay(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = outbox_enqueue("tests.record", {}, delay=timedelta(minutes=10))
    assert callbacks == []
    assert outbox_relay(min_age=timedelta(0)) == 0
    assert outbox_relay(min_age=timedelta(0), now=message.next_attempt_at) == 1


def test_a_broker_outage_at_commit_is_one_warning_and_never_an_error(caplog, django_capture_on_commit_callbacks):
    redis = RedisServer()
    with celery_broker(redis.url), caplog.at_level(logging.DEBUG, logger="servicedesk.outbox"):
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            messages = [outbox_enqueue("tests.record", {"n": n}) for n in range(3)]
        elapsed = time.monotonic() - started
    assert elapsed < 3, f"the commit waited {elapsed:.1f}s on a dead broker"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1  # the first failure pauses hand-offs to that broker: one connect, one line
    assert warnings[0].exc_info is None and "the relay will re-drive it" in warnings[0].getMessage()
    assert set(OutboxMessage.objects.filter(id__in=[m.id for m in messages]).values_list("state", flat=True)) == {
        "pending"}


def test_a_hand_off_reaches_a_live_broker():
    with RedisServer() as redis, celery_broker(redis.url) as app:
        assert outbox.hand_off(123) is True
        with app.connection_for_write() as conn:
            assert conn.default_channel.client.llen(app.conf.task_default_queue) == 1


# --- processing ------------------------------------------------------------------------------------------


def test_it_runs_a_message_once_and_marks_it_done():
    message = make_message()
    assert outbox_process(message.id) == "done"
    assert outbox_process(message.id) is None  # a duplicate hand-off finds nothing to do
    assert outbox_relay(min_age=timedelta(0)) == 0
    message.refresh_from_db()
    assert (message.state, message.attempts, message.last_error) == ("done", 1, "")
    assert message.processed_at is not None
    assert [run[0] for run in ran] == [message.id]


def test_the_handlers_writes_commit_with_the_done_mark():
    message = make_message("tests.write", {"then": "ok"})
    assert outbox_process(message.id) == "done"
    assert Organisation.objects.filter(name=f"org-{message.id}-1").exists()


def test_a_transient_exception_rolls_the_handlers_writes_back_and_retries_with_backoff():
    message = make_message("tests.write", {"then": "raise-flaky"})
    before = timezone.now()
    assert outbox_process(message.id) == "pending"
    message.refresh_from_db()
    assert (message.attempts, message.last_error) == (1, "Flaky: try later")
    assert timedelta(seconds=4) < message.next_attempt_at - before < timedelta(seconds=6)
    assert not Organisation.objects.filter(name__startswith="org-").exists()
    assert outbox_process(message.id) is None  # not due yet
    assert outbox_process(message.id, now=message.next_attempt_at) == "pending"
    message.refresh_from_db()
    assert outbox_process(message.id, now=message.next_attempt_at) == "failed"
    message.refresh_from_db()
    assert (message.state, message.attempts) == ("failed", 3)
    assert message.last_error == "gave up after 3 attempts: Flaky: try later"


def test_a_give_up_hook_that_fails_still_leaves_the_message_failed_not_retried_for_ever(caplog):
    message = make_message("tests.give-up-badly")
    assert outbox_process(message.id) == "failed"
    message.refresh_from_db()
    assert (message.state, message.attempts) == ("failed", 1)
    assert message.last_error == "gave up after 1 attempts: Flaky: down"
    assert not Organisation.objects.filter(name=f"give-up-{message.id}").exists()  # the hook's writes undone
    assert "on_give_up of message" in caplog.text


def test_a_returned_retry_keeps_what_the_handler_recorded():
    message = make_message("tests.write", {"then": "retry"})
    assert outbox_process(message.id) == "pending"
    assert Organisation.objects.filter(name=f"org-{message.id}-1").exists()
    message.refresh_from_db()
    assert message.last_error == "503 from the peer"


def test_a_returned_fail_fails_at_once_and_a_bug_fails_at_once_without_its_writes(caplog):
    refused = make_message("tests.write", {"then": "fail"})
    assert outbox_process(refused.id) == "failed"
    refused.refresh_from_db()
    assert (refused.attempts, refused.last_error) == (1, "410 gone")
    assert Organisation.objects.filter(name=f"org-{refused.id}-1").exists()

    buggy = make_message("tests.write", {"then": "raise-bug"})
    assert outbox_process(buggy.id) == "failed"
    buggy.refresh_from_db()
    assert (buggy.attempts, buggy.last_error) == (1, "KeyError: 'bug'")
    assert not Organisation.objects.filter(name=f"org-{buggy.id}-1").exists()


def test_an_unknown_handler_fails_the_message_naming_the_key():
    message = make_message("nobody.handles.this")
    assert outbox_process(message.id) == "failed"
    message.refresh_from_db()
    assert message.last_error == "no handler registered for 'nobody.handles.this'"


def test_a_handler_key_cannot_be_registered_twice_by_different_functions():
    with pytest.raises(ValueError, match="tests.record"):
        outbox_handler("tests.record")(lambda message: None)


def test_enqueue_on_commit_runs_the_task_through_the_outbox(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        enqueue_on_commit(worker_heartbeat)
    message = OutboxMessage.objects.get()
    assert (message.handler, message.payload) == ("task.run", {"task": worker_heartbeat.name, "kwargs": {}})
    assert not Heartbeat.objects.exists()
    assert outbox_process(message.id) == "done"
    assert Heartbeat.objects.filter(name="worker").exists()


# --- the relay -------------------------------------------------------------------------------------------


def test_the_relay_runs_old_pending_messages_and_leaves_fresh_ones_to_their_hand_off():
    old = make_message(age=timedelta(minutes=5))
    fresh = make_message(age=timedelta(seconds=5))
    later = make_message(age=timedelta(minutes=5), next_attempt_at=timezone.now() + timedelta(minutes=1))
    done = make_message(state="done")
    failed = make_message(state="failed")
    assert outbox_relay() == 1
    assert [run[0] for run in ran] == [old.id]
    assert set(OutboxMessage.objects.filter(state="pending").values_list("id", flat=True)) == {fresh.id, later.id}
    assert outbox_relay(now=timezone.now() + timedelta(minutes=2)) == 2
    assert sorted(run[0] for run in ran) == sorted([old.id, fresh.id, later.id])
    assert {done.id, failed.id}.isdisjoint(run[0] for run in ran)


def test_the_relay_stops_at_its_batch_size():
    for _ in range(5):
        make_message()
    assert outbox_relay(batch=2) == 2
    assert OutboxMessage.objects.filter(state="pending").count() == 3


def test_the_relays_due_query_reads_the_partial_index():
    # The shape the relay meets: a long history of done messages and a few pending ones, with statistics that say
    # so (the planner's choice follows them, so the test gives it real ones rather than forcing its hand).
    now = timezone.now()
    OutboxMessage.objects.bulk_create(
        [OutboxMessage(handler="tests.record", state="done", processed_at=now - timedelta(minutes=n),
                       next_attempt_at=now - timedelta(minutes=n), created_at=now - timedelta(minutes=n))
         for n in range(5000)]
        + [OutboxMessage(handler="tests.record", next_attempt_at=now - timedelta(seconds=n)) for n in range(5)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE servicedesk_outboxmessage")
        sql, params = (OutboxMessage.objects.filter(state="pending", next_attempt_at__lte=timezone.now())
                       .order_by("next_attempt_at").values("id")[:1].query.sql_with_params())
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "outbox_pending_due_idx" in plan


@pytest.mark.django_db(transaction=True)
def test_two_relays_on_two_connections_never_run_one_message_twice():
    ids = [make_message(payload={"sleep": 0.05}).id for _ in range(20)]
    counts = {}

    def relay(name):
        try:
            counts[name] = outbox_relay(min_age=timedelta(0))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=relay, args=(f"relay-{n}",), name=f"relay-{n}") for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(run[0] for run in ran) == sorted(ids)  # every message once, none twice
    assert counts["relay-1"] + counts["relay-2"] == 20
    assert counts["relay-1"] > 0 and counts["relay-2"] > 0  # both really worked side by side
    assert set(OutboxMessage.objects.values_list("state", "attempts")) == {("done", 1)}


@pytest.mark.django_db(transaction=True)
def test_a_message_claimed_by_one_worker_is_skipped_not_waited_for_by_another():
    message = make_message("tests.record", {"sleep": 1.5})
    outcome = {}

    def first():
        try:
            outcome["first"] = outbox_process(message.id)
        finally:
            connections.close_all()

    thread = threading.Thread(target=first, name="first")
    thread.start()
    assert wait_until(lambda: ran)  # the first worker holds the row
    started = time.monotonic()
    assert outbox_process(message.id) is None  # SKIP LOCKED: not ours, and no waiting
    assert outbox_relay(min_age=timedelta(0)) == 0
    assert time.monotonic() - started < 1
    thread.join(timeout=30)
    assert outcome["first"] == "done"
    assert [run[1] for run in ran] == ["first"]


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


# --- upkeep and admin ------------------------------------------------------------------------------------


def test_the_purge_deletes_old_done_messages_only(settings):
    now = timezone.now()
    old_done = make_message(state="done", processed_at=now - timedelta(days=settings.OUTBOX_KEEP_DAYS + 1))
    new_done = make_message(state="done", processed_at=now - timedelta(days=1))
    old_failed = make_message(state="failed", processed_at=now - timedelta(days=settings.OUTBOX_KEEP_DAYS + 1))
    assert outbox.outbox_purge() == 1
    assert set(OutboxMessage.objects.values_list("id", flat=True)) == {new_done.id, old_failed.id}
    assert not OutboxMessage.objects.filter(id=old_done.id).exists()


def test_admin_lists_messages_and_queues_failed_ones_again(make_user, client, django_capture_on_commit_callbacks):
    admin = make_user("admin", username="root")
    client.force_login(admin)
    failed = make_message("tests.record", state="failed", attempts=9, last_error="gave up after 9 attempts: x")
    done = make_message("tests.record", state="done", attempts=1)
    page = client.get("/admin/servicedesk/outboxmessage/?state__exact=failed")
    assert page.status_code == 200
    assert "gave up after 9 attempts" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/admin/servicedesk/outboxmessage/", {
            "action": "retry_failed", "_selected_action": [failed.id, done.id]})
    assert response.status_code == 302
    failed.refresh_from_db()
    done.refresh_from_db()
    assert (failed.state, failed.attempts) == ("pending", 0)
    assert done.state == "done"
    assert [cb.args for cb in callbacks] == [(failed.id,)]
    assert AuditLog.objects.filter(action="outboxmessage.retried", actor=admin, changes={"ids": [failed.id]}).exists()
    assert outbox_process(failed.id) == "done"


def test_the_migration_gives_deliveries_left_pending_by_the_old_code_an_outbox_message():
    from importlib import import_module

    from django.apps import apps

    from servicedesk.models import Webhook, WebhookDelivery

    migration = import_module("servicedesk.migrations.0005_outbox_idempotency")
    hook = Webhook.objects.create(name="ops", url="http://127.0.0.1:9/", secret="x")
    stuck = WebhookDelivery.objects.create(webhook=hook, event="incident.created", payload={})
    WebhookDelivery.objects.create(webhook=hook, event="incident.created", payload={}, state="delivered")
    migration.redrive_pending_webhook_deliveries(apps, None)
    assert list(OutboxMessage.objects.values_list("handler", "payload", "state")) == [
        ("webhook.deliver", {"delivery_id": stuck.id}, "pending")]


@pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning")  # sla.tasks imported again
def test_threads_that_first_look_up_a_handler_at_once_all_find_it(monkeypatch):
    """A process that has not imported the apps' tasks modules loads them on the first lookup. Celery's
    autodiscovery returns nothing to a second thread while a first one is importing (its _RACE_PROTECTION
    flag), so without the lookup's own lock that second thread failed its message: "no handler"."""
    import sys

    import sla

    # As in a fresh process: the escalation handler and the modules that register it are not loaded yet.
    monkeypatch.delitem(outbox._handlers, "sla.escalate", raising=False)
    for name in ("tasks", "escalations"):
        monkeypatch.delitem(sys.modules, f"sla.{name}", raising=False)
        monkeypatch.delattr(sla, name, raising=False)
    barrier, found = threading.Barrier(8), []

    def look_up():
        barrier.wait(timeout=10)
        found.append(outbox.handler_for("sla.escalate"))

    threads = [threading.Thread(target=look_up) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(found) == 8 and None not in found
