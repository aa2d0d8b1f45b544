"""The sweep and the escalations under real concurrency, on real PostgreSQL: two sweeps started together over
the same ~300 due clocks mark each threshold once and queue one escalation each; two processors of those
escalations run each step once; a sweep process killed before its commit leaves nothing marked, and the next
sweep marks everything: none twice, none missed.

Transactional tests (each thread has its own connection and sees what the others committed); the tables are
flushed between them, so each builds the SLA configuration it needs."""

import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from servicedesk.models import OutboxMessage, Team, TimelineEntry
from servicedesk.outbox import outbox_process
from sla.defaults import ALWAYS, ensure_defaults
from sla.models import BusinessCalendar, ClockState, EscalationStep, SlaClock, SlaPolicy, SlaTarget
from sla.sweep import sla_sweep
from tests.workers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
INCIDENTS = 150  # two SLA clocks each: 300 clocks due at once


@pytest.fixture
def race_policy(db):
    """Respond in 10 minutes, resolve in 60, 24x7, warn at 50 %. Warning: notify the assignee; breach: notify
    the assignee and the team lead."""
    ensure_defaults()
    SlaPolicy.objects.update(active=False)
    policy = SlaPolicy.objects.create(name="Race", order=1, calendar=BusinessCalendar.objects.get(name=ALWAYS),
                                      warning_percent=50)
    SlaTarget.objects.bulk_create([
        SlaTarget(policy=policy, priority=p, first_response_minutes=10, resolution_minutes=60) for p in range(1, 6)
    ])
    EscalationStep.objects.create(policy=policy, when="warning", action="notify_assignee")
    EscalationStep.objects.create(policy=policy, when="breach", action="notify_assignee")
    EscalationStep.objects.create(policy=policy, when="breach", action="notify_team_lead")
    return policy


@pytest.fixture
def due_incidents(race_policy, incident_factory, agent, make_user):
    """150 incidents raised 40 minutes ago: each one's first response is breached (10 min) and its resolution
    past its warning (30 of 60 min), so 150 breaches and 150 warnings are due."""
    desk = Team.objects.get(name="Service Desk")
    desk.lead = make_user("manager", username="lena", teams=["Service Desk"])
    desk.save()
    raised = timezone.now() - timedelta(minutes=40)
    incidents = [incident_factory(title=f"Race {n}", now=raised, assignee=agent, assignment_group=desk)
                 for n in range(INCIDENTS)]
    assert SlaClock.objects.filter(state=ClockState.RUNNING).count() == 2 * INCIDENTS
    return incidents


def in_threads(*targets):
    """Run each callable in its own thread with its own database connection, released together."""
    barrier = threading.Barrier(len(targets))
    results, errors = [None] * len(targets), []

    def run(i, target):
        try:
            connection.ensure_connection()  # connect first, so the barrier releases two ready sweeps
            barrier.wait(timeout=30)
            results[i] = target()
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def escalations() -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(handler="sla.escalate").order_by("id"))


def test_two_sweeps_at_once_mark_each_clock_once_and_escalate_it_once(due_incidents, agent):
    now = timezone.now().replace(microsecond=0)  # payloads keep milliseconds
    # Two sweeps, each with its own connection and its own "now" (a clock marked by both would carry the
    # second one's instant and have two messages), in small batches so their claims interleave.
    first, second = in_threads(lambda: sla_sweep(now=now, batch=20),
                               lambda: sla_sweep(now=now + timedelta(seconds=1), batch=20))
    assert first.breached + second.breached == INCIDENTS
    assert first.warned + second.warned == INCIDENTS

    clocks = {c.id: c for c in SlaClock.objects.all()}
    messages = escalations()
    per_clock_stage = Counter((m.payload["clock_id"], m.payload["stage"]) for m in messages)
    assert len(messages) == 2 * INCIDENTS
    assert set(per_clock_stage.values()) == {1}
    for message in messages:
        clock = clocks[message.payload["clock_id"]]
        stage = message.payload["stage"]
        if clock.kind == "first_response":
            assert stage == "breach"
            assert clock.breached_at == parse_datetime(message.payload["at"])  # marked by the sweep that queued
        else:
            assert stage == "warning"
            assert clock.warned_at == parse_datetime(message.payload["at"]) and clock.breached_at is None
    assert sla_sweep(now=now + timedelta(seconds=2)) == (0, 0)  # nothing left, nothing marked again

    # Two processors run every escalation at once (one from each end): each runs once.
    ids = [m.id for m in messages]
    later = now + timedelta(days=1)
    ran_a, ran_b = in_threads(lambda: [outbox_process(i, now=later) for i in ids],
                              lambda: [outbox_process(i, now=later) for i in reversed(ids)])
    assert Counter(ran_a + ran_b) == Counter({"done": len(ids), None: len(ids)})
    assert {m.state for m in escalations()} == {"done"}

    notes = Counter(
        (e["object_id"], e["data"]["clock"], e["data"]["event"])
        for e in TimelineEntry.objects.filter(data__event__startswith="sla.").values("object_id", "data")
    )
    assert len(notes) == 2 * INCIDENTS and set(notes.values()) == {1}
    assert {event for _, _, event in notes} == {"sla.warning", "sla.breached"}

    mails = OutboxMessage.objects.filter(handler="email.send", payload__template="sla_escalation")
    sent = Counter((m.payload["context"]["ticket"]["number"], m.payload["context"]["stage"], m.payload["to"][0])
                   for m in mails)
    # one per notify step: the warning to the assignee, the breach to the assignee and to the lead
    assert sum(sent.values()) == 3 * INCIDENTS and set(sent.values()) == {1}
    assert {to for _, stage, to in sent if stage == "breach"} == {agent.email, "lena@example.com"}


SWEEP_IN_A_PROCESS = """
import django
django.setup()
from sla.sweep import sla_sweep
print(sla_sweep(), flush=True)
"""


def test_a_sweep_killed_before_its_commit_marks_nothing_and_the_next_one_marks_all(due_incidents):
    db = connection.settings_dict
    holder = psycopg2.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                              password=db["PASSWORD"] or None, dbname=db["NAME"])
    env = {**os.environ, "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
                                          f"{db['PORT'] or 5432}/{db['NAME']}"}
    try:
        # Hold the outbox table: the sweep process marks its batch, then waits to write the escalations.
        with holder.cursor() as cursor:
            cursor.execute("LOCK TABLE servicedesk_outboxmessage IN EXCLUSIVE MODE")
        proc = subprocess.Popen([sys.executable, "-c", SWEEP_IN_A_PROCESS], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        def waiting_backend():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
                               " AND query LIKE 'INSERT INTO \"servicedesk_outboxmessage\"%%'", [db["NAME"]])
                row = cursor.fetchone()
            return row[0] if row else None

        assert wait_for(waiting_backend, timeout=60), "the sweep process never reached its outbox write"
        backend = waiting_backend()
        with connection.cursor() as cursor:  # it holds the breached clocks (swept first), marked, uncommitted
            cursor.execute("SELECT kind FROM sla_slaclock WHERE state = 'running' FOR UPDATE SKIP LOCKED")
            assert Counter(kind for (kind,) in cursor.fetchall()) == {"resolution": INCIDENTS}
        proc.kill()
        proc.wait(timeout=20)
        holder.rollback()  # let the orphaned backend go on; its client is gone, so its transaction aborts

        def backend_gone():
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [backend])
                return cursor.fetchone()[0] == 0

        assert wait_for(backend_gone, timeout=30)
    finally:
        holder.close()

    assert not SlaClock.objects.filter(breached_at__isnull=False).exists()
    assert not SlaClock.objects.filter(warned_at__isnull=False).exists()
    assert not OutboxMessage.objects.filter(handler="sla.escalate").exists()

    result = sla_sweep()  # the next run: none missed
    assert (result.breached, result.warned) == (INCIDENTS, INCIDENTS)
    assert SlaClock.objects.filter(kind="first_response", breached_at__isnull=False).count() == INCIDENTS
    assert SlaClock.objects.filter(kind="resolution", warned_at__isnull=False).count() == INCIDENTS
    assert len(escalations()) == 2 * INCIDENTS
