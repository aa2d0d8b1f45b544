"""A breach end to end in real processes: the `sla.tasks.sla_sweep` task runs in a real Celery worker (Redis
broker, test database), marks the breach, and the escalation it queues runs through the outbox in that worker,
whose mail reaches a real SMTP sink."""

from datetime import timedelta

import pytest
from django.utils import timezone

from servicedesk.celery import app as celery_app
from servicedesk.models import OutboxMessage, Team, TimelineEntry
from sla.defaults import ALWAYS, ensure_defaults
from sla.models import BusinessCalendar, EscalationStep, SlaClock, SlaPolicy, SlaTarget
from tests.workers import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def subjects(smtp) -> list[str]:
    return [line.split(":", 1)[1].strip() for m in smtp.messages for line in m["data"].splitlines()
            if line.startswith("Subject:")]


def test_a_breach_is_swept_escalated_and_mailed_by_a_real_worker(worker, smtp, incident_factory, agent, tmp_path):
    ensure_defaults()  # transactional tests flush the rows the migrations seeded
    SlaPolicy.objects.update(active=False)
    policy = SlaPolicy.objects.create(name="Tight", order=1, calendar=BusinessCalendar.objects.get(name=ALWAYS))
    SlaTarget.objects.bulk_create([
        SlaTarget(policy=policy, priority=p, first_response_minutes=10, resolution_minutes=60) for p in range(1, 6)
    ])
    EscalationStep.objects.create(policy=policy, when="breach", action="notify_assignee")
    incident = incident_factory(title="Label printer offline", now=timezone.now() - timedelta(minutes=30),
                                assignee=agent, assignment_group=Team.objects.get(name="Service Desk"))
    first_response = SlaClock.objects.get(ticket_id=incident.id, kind="first_response")
    assert first_response.due_at < timezone.now() and first_response.breached_at is None

    celery_app.send_task("sla.tasks.sla_sweep")

    def escalation_mail():
        return [s for s in subjects(smtp) if "SLA breached" in s]

    if not wait_for(escalation_mail, timeout=60):
        pytest.fail(f"no escalation mail; got {subjects(smtp)}\n{(tmp_path / 'worker.log').read_text()[-3000:]}")
    assert escalation_mail() == [f"[{incident.number}] SLA breached: First response of P{incident.priority} "
                                 "Label printer offline"]
    mail = next(m for m in smtp.messages if "SLA breached" in m["data"])
    assert mail["to"] == [agent.email]

    first_response.refresh_from_db()
    assert first_response.breached_at is not None
    assert wait_for(lambda: not OutboxMessage.objects.filter(state="pending").exists(), timeout=30)
    assert set(OutboxMessage.objects.filter(handler="sla.escalate").values_list("state", flat=True)) == {"done"}
    assert TimelineEntry.objects.filter(object_id=incident.id, data__event="sla.breached").count() == 1
    assert SlaClock.objects.get(ticket_id=incident.id, kind="resolution").breached_at is None  # 30 of 60 min
