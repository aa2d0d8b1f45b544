"""The broker goes away while an incident is created through the API, and comes back.

Everything is real: the test's own redis-server (stopped and started by the test), this process's
Celery app pointed at it for the web request's publish, a `celery -A servicedesk worker` process, the
SMTP sink and the HTTP receiver. The write answers 201; after the broker is back the relay re-drives the
mail and the webhook, and each arrives exactly once."""

import logging
import time

import pytest

from incidents.models import Incident
from servicedesk.models import Heartbeat, OutboxMessage, Webhook, WebhookDelivery
from tests.peers import HttpReceiver, SmtpSink
from tests.workers import RedisServer, celery_broker, celery_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def settle(app) -> None:
    """Wait until the (solo) worker has run everything queued before this point."""
    Heartbeat.objects.all().delete()
    app.send_task("servicedesk.tasks.worker_heartbeat")
    assert wait_for(lambda: Heartbeat.objects.exists(), timeout=30), "the worker stopped consuming"


def test_a_write_during_a_broker_outage_answers_201_and_its_side_effects_arrive_once_when_it_is_back(
    make_user, client_for, tmp_path, caplog
):
    requester = make_user("requester", username="carla", email="carla@example.com")
    client = client_for(requester)
    redis = RedisServer()
    redis.start()
    with SmtpSink() as smtp, HttpReceiver(status=200) as receiver, celery_broker(redis.url) as app:
        Webhook.objects.create(name="ops", url=receiver.url, secret="s3cret", events=["incident.created"])
        assert app.connection_for_write().ensure_connection(max_retries=1)  # the broker is there...
        redis.stop()  # ...and now it is gone

        body = {"title": "VPN drops every ten minutes", "urgency": 2}
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="servicedesk.outbox"):
            response = client.post("/api/v1/incidents/", body, format="json", HTTP_IDEMPOTENCY_KEY="vpn-1")
        elapsed = time.monotonic() - started

        assert response.status_code == 201, response.content
        assert elapsed < 5, f"the request waited {elapsed:.1f}s on the dead broker"
        number = response.json()["number"]
        assert Incident.objects.filter(number=number).exists()
        warnings = [r for r in caplog.records if r.name == "servicedesk.outbox"]
        assert warnings and all(r.levelno == logging.WARNING and r.exc_info is None for r in warnings)
        assert "the relay will re-drive it" in warnings[0].getMessage()
        pending = OutboxMessage.objects.filter(state="pending")
        assert sorted(pending.values_list("handler", flat=True)) == ["email.send", "webhook.deliver"]

        # The client never saw the answer and retries: it gets the first response, not a second incident.
        retry = client.post("/api/v1/incidents/", body, format="json", HTTP_IDEMPOTENCY_KEY="vpn-1")
        assert (retry.status_code, retry.json()["number"], retry.headers["Idempotent-Replayed"]) == (
            201, number, "true")
        assert Incident.objects.count() == 1
        assert OutboxMessage.objects.count() == 2

        redis.start()  # the broker is back (empty: nothing was ever queued in it)
        try:
            with celery_worker(broker_url=redis.url, smtp_port=smtp.port, tmp_path=tmp_path):
                assert not smtp.received.wait(timeout=2), "mail arrived before anything re-drove it"

                app.send_task("servicedesk.tasks.outbox_relay", kwargs={"min_age_seconds": 0})  # as beat does
                assert smtp.received.wait(timeout=45), "the relay sent no mail"
                assert receiver.received.wait(timeout=45), "the relay called no webhook"
                assert wait_for(lambda: not OutboxMessage.objects.exclude(state="done").exists(), timeout=30)

                # Beat runs the relay again, and stray duplicate hand-offs of both messages arrive too.
                app.send_task("servicedesk.tasks.outbox_relay", kwargs={"min_age_seconds": 0})
                for message_id in OutboxMessage.objects.values_list("id", flat=True):
                    app.send_task("servicedesk.tasks.outbox_process", args=[message_id])
                settle(app)
        finally:
            redis.stop()

    assert len(smtp.messages) == 1
    assert smtp.messages[0]["to"] == ["carla@example.com"]
    assert f"[{number}]" in smtp.messages[0]["data"]
    assert len(receiver.requests) == 1
    assert receiver.json_bodies()[0]["data"]["number"] == number
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("delivered", 1)
    assert list(OutboxMessage.objects.values_list("attempts", flat=True)) == [1, 1]
