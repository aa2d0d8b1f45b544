"""A real Celery worker process, a real Redis broker, a real SMTP sink and HTTP receiver.

The test commits work the way the application does (services enqueue on commit) and watches the
worker, started as a separate `celery -A servicedesk worker` process, carry it out."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction

from incidents.services import incident_create
from servicedesk.celery import app as celery_app
from servicedesk.models import Heartbeat, Webhook, WebhookDelivery
from tests.peers import HttpReceiver, SmtpSink

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, timeout=45.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.fixture
def smtp():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def worker(smtp, tmp_path):
    """Start `celery -A servicedesk worker` against the test database and the test broker."""
    celery_app.control.purge()  # nothing left over from other tests reaches this worker
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp.port),
        "SERVICEDESK_VAR_DIR": str(tmp_path),
        "MEDIA_ROOT": str(tmp_path / "media"),
    }
    log = open(tmp_path / "worker.log", "w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "servicedesk", "worker", "--pool", "solo", "--loglevel", "info",
         "--without-gossip", "--without-mingle", "--hostname", "test-worker@%h"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        # The worker stamps its heartbeat when it is ready (celery.signals.worker_ready).
        ready = wait_for(lambda: Heartbeat.objects.filter(name="worker").exists(), timeout=60)
        if not ready:
            log.seek(0)
            pytest.fail(f"the worker did not come up within 60s:\n{log.read()[-3000:]}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_a_committed_incident_is_mailed_and_webhooked_by_a_real_worker(worker, smtp, make_user, client):
    requester = make_user("requester", username="carla", email="carla@example.com")
    with HttpReceiver(status=200) as receiver:
        Webhook.objects.create(name="ops", url=receiver.url, secret="s3cret", events=["incident.created"])
        with transaction.atomic():
            incident = incident_create(title="VPN drops every ten minutes", requester=requester,
                                       created_by=requester)
            assert not smtp.messages  # nothing leaves before the commit

        assert smtp.received.wait(timeout=45), "the worker sent no mail"
        assert receiver.received.wait(timeout=45), "the worker called no webhook"

    message = smtp.messages[0]
    assert message["to"] == ["carla@example.com"]
    assert f"[{incident.number}]" in message["data"]
    assert "VPN drops every ten minutes" in message["data"]
    assert receiver.json_bodies()[0]["data"]["number"] == incident.number
    assert wait_for(lambda: WebhookDelivery.objects.filter(state="delivered").count() == 1, timeout=15)

    # The heartbeat task, run by the worker, keeps /healthz green.
    Heartbeat.objects.all().delete()
    celery_app.send_task("servicedesk.tasks.worker_heartbeat")
    assert wait_for(lambda: Heartbeat.objects.filter(name="worker").exists(), timeout=30)
    assert client.get("/healthz").json()["worker"] == "ok"


def test_a_rolled_back_write_sends_nothing(worker, smtp, make_user):
    requester = make_user("requester", username="dave", email="dave@example.com")
    with pytest.raises(RuntimeError), transaction.atomic():
        incident_create(title="Never committed", requester=requester, created_by=requester)
        raise RuntimeError("rollback")
    requester2 = make_user("requester", username="erin", email="erin@example.com")
    with transaction.atomic():
        incident_create(title="Committed after", requester=requester2, created_by=requester2)
    assert smtp.received.wait(timeout=45)
    time.sleep(1.0)  # give a wrongly queued first mail the chance to arrive too
    assert [m["to"] for m in smtp.messages] == [["erin@example.com"]]
