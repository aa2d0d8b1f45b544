import hashlib
import hmac
import json

import pytest
from django.core import mail

from servicedesk.models import Webhook, WebhookDelivery
from servicedesk.notifications import webhook_signature
from servicedesk.tasks import email_send, webhook_deliver
from tests.peers import HttpReceiver

pytestmark = pytest.mark.django_db


def test_creating_an_incident_queues_mail_and_webhook_only_on_commit(
    requester, incident_factory, django_capture_on_commit_callbacks
):
    Webhook.objects.create(name="chatops", url="http://127.0.0.1:9/", secret="s3cret", events=["incident.created"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        incident = incident_factory()
    queued = sorted(cb.func.__self__.name for cb in callbacks)
    assert queued == ["servicedesk.tasks.email_send", "servicedesk.tasks.webhook_deliver"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.event == "incident.created"
    assert delivery.payload["number"] == incident.number
    assert delivery.state == "pending"


def test_the_email_task_renders_the_template_and_sends_it(requester, incident_factory):
    incident = incident_factory()
    email_send.apply(kwargs={
        "template": "incident_created", "to": [requester.email],
        "context": {"incident": {"number": incident.number, "title": incident.title, "status": "new",
                                 "priority": 5, "requester": "alice"}},
    }).get()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    assert incident.number in message.subject
    assert f"/portal/incidents/{incident.number}/" in message.body


def test_a_webhook_is_posted_with_a_verifiable_hmac_signature():
    with HttpReceiver(status=204) as receiver:
        hook = Webhook.objects.create(name="ops", url=receiver.url, secret="s3cret")
        delivery = WebhookDelivery.objects.create(webhook=hook, event="incident.created", payload={"number": "INC1"})
        webhook_deliver.apply(kwargs={"delivery_id": delivery.id}).get()
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    expected = hmac.new(b"s3cret", headers["x-servicedesk-timestamp"].encode() + b"." + request["body"],
                        hashlib.sha256).hexdigest()
    assert headers["x-servicedesk-signature"] == f"sha256={expected}"
    assert headers["x-servicedesk-event"] == "incident.created"
    assert json.loads(request["body"])["data"] == {"number": "INC1"}
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.response_code) == ("delivered", 1, 204)


def test_a_signature_with_another_secret_does_not_match():
    assert webhook_signature("a", "1", b"{}") != webhook_signature("b", "1", b"{}")


def test_a_webhook_refused_with_4xx_fails_at_once_without_retries():
    with HttpReceiver(status=410) as receiver:
        hook = Webhook.objects.create(name="gone", url=receiver.url, secret="x")
        delivery = WebhookDelivery.objects.create(webhook=hook, event="incident.created", payload={})
        webhook_deliver.apply(kwargs={"delivery_id": delivery.id})
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.response_code) == ("failed", 1, 410)


def test_a_webhook_answering_5xx_is_retried_then_given_up():
    with HttpReceiver(status=503) as receiver:
        hook = Webhook.objects.create(name="flaky", url=receiver.url, secret="x")
        delivery = WebhookDelivery.objects.create(webhook=hook, event="incident.created", payload={})
        webhook_deliver.apply(kwargs={"delivery_id": delivery.id})  # eager: retries run at once
    delivery.refresh_from_db()
    assert delivery.state == "failed"
    assert delivery.attempts == webhook_deliver.max_retries + 1 == len(receiver.requests)
    assert delivery.error.startswith("gave up after 9 attempts")


def test_a_webhook_only_gets_the_events_it_subscribed_to(requester, incident_factory):
    Webhook.objects.create(name="comments-only", url="http://127.0.0.1:9/", secret="x", events=["incident.commented"])
    Webhook.objects.create(name="everything", url="http://127.0.0.1:9/", secret="x", events=[])
    incident_factory()
    assert list(WebhookDelivery.objects.values_list("webhook__name", flat=True)) == ["everything"]
