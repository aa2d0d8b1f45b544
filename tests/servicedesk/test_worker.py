"""A real Celery worker process, a real Redis broker, a real SMTP sink and HTTP receiver.

The test commits work the way the application does (services enqueue on commit) and watches the
worker, started as a separate `celery -A servicedesk worker` process, carry it out."""

import time

import pytest
from django.db import transaction

from incidents.services import incident_create
from servicedesk.celery import app as celery_app
from servicedesk.models import Heartbeat, Webhook, WebhookDelivery
from tests.peers import HttpReceiver
from tests.workers import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


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
