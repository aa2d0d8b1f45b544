"""Retention with committed data: a real Celery worker runs the beat task, and a row another transaction holds is
skipped (SKIP LOCKED), never waited for."""

import time
from datetime import timedelta

import psycopg2
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from incidents.models import Incident
from servicedesk import retention
from servicedesk.celery import app as celery_app
from servicedesk.models import RetentionRun
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]


def old_closed(incident_factory, title, days_ago=400):
    incident = incident_factory(title=title)
    when = timezone.now() - timedelta(days=days_ago)
    # Closed long ago: the closing itself is tested in test_retention.py; here only its date matters.
    Incident.objects.filter(id=incident.id).update(status="cancelled", closed_at=when, created_at=when)
    return incident


@pytest.mark.worker
def test_a_real_worker_runs_the_beat_task(incident_factory, smtp, tmp_path):
    entry = settings.CELERY_BEAT_SCHEDULE["retention-run"]
    assert entry["task"] == "servicedesk.tasks.retention_run" and entry["schedule"] == 3600.0
    old = old_closed(incident_factory, "Closed long ago")
    recent = old_closed(incident_factory, "Closed lately", days_ago=10)
    archive_dir = tmp_path / "archive"

    celery_app.control.purge()
    with celery_worker(broker_url=settings.CELERY_BROKER_URL, smtp_port=smtp.port, tmp_path=tmp_path,
                       extra_env={"RETENTION_TICKETS_DAYS": "30", "RETENTION_ARCHIVE_DIR": str(archive_dir)}):
        celery_app.send_task(entry["task"])
        assert wait_for(lambda: RetentionRun.objects.filter(state="done").exists(), timeout=60), \
            "the worker ran no retention"

    run = RetentionRun.objects.get()
    assert not Incident.objects.filter(id=old.id).exists() and Incident.objects.filter(id=recent.id).exists()
    assert run.counts["tickets.incident"]["removed"] == 1
    assert run.archive.startswith(str(archive_dir))
    (line,) = retention.read_archive(run.archive)
    assert line["ticket"]["number"] == old.number


def test_a_ticket_another_transaction_holds_is_skipped_not_waited_for(incident_factory, settings):
    settings.RETENTION_TICKETS_DAYS = 30
    held, free = old_closed(incident_factory, "Being read"), old_closed(incident_factory, "Free")
    db = connection.settings_dict
    other = psycopg2.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"] or "127.0.0.1",
                             port=db["PORT"] or 5432)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT id FROM incidents_incident WHERE id = %s FOR UPDATE", [held.id])
        started = time.monotonic()
        run = retention.retention_run()
        took = time.monotonic() - started
    finally:
        other.rollback()
        other.close()

    assert took < 10, "the run waited for the lock"
    assert run.counts["tickets.incident"]["removed"] == 1
    assert Incident.objects.filter(id=held.id).exists() and not Incident.objects.filter(id=free.id).exists()
    retention.retention_run()  # the next run takes it
    assert not Incident.objects.filter(id=held.id).exists()
