import hashlib
import hmac
import json

import pytest
from django.core import mail
from django.utils import timezone

from servicedesk import outbox
from servicedesk.models import OutboxMessage, Webhook, WebhookDelivery
from servicedesk.notifications import WEBHOOK_MAX_ATTEMPTS, email_enqueue, webhook_enqueue, webhook_signature
from tests.peers import HttpReceiver

pytestmark = pytest.mark.django_db


def run_message(message, *, now=None) -> str | None:
    """What the worker does with a message handed off on commit."""
    return outbox.outbox_process(message.id, now=now)


def test_creating_an_incident_queues_mail_and_webhook_only_on_commit(
    requester, incident_factory, django_capture_on_commit_callbacks
):
    Webhook.objects.create(name="chatops", url="http://127.0.0.1:9/", secret="s3cret", events=["incident.created"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        incident = incident_factory()
    # The side effects are rows of the same transaction, handed to the broker only by on-commit callbacks.
    assert all(cb.func is outbox.hand_off for cb in callbacks)
    queued = sorted(OutboxMessage.objects.get(id=cb.args[0]).handler for cb in callbacks)
    assert queued == ["email.send", "webhook.deliver"]
    assert set(OutboxMessage.objects.values_list("state", flat=True)) == {"pending"}
    delivery = WebhookDelivery.objects.get()
    assert delivery.event == "incident.created"
    assert delivery.payload["number"] == incident.number
    assert delivery.state == "pending"


def test_the_email_task_renders_the_template_and_sends_it(requester, incident_factory):
    incident = incident_factory()
    OutboxMessage.objects.all().delete()
    email_enqueue(template="incident_created", to=[requester.email], context={
        "incident": {"number": incident.number, "title": incident.title, "status": "new", "priority": 5,
                     "requester": "alice"}})
    queued = OutboxMessage.objects.get()
    assert run_message(queued) == "done"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    assert incident.number in message.subject
    assert f"/portal/incidents/{incident.number}/" in message.body
    assert message.extra_headers["Message-ID"].startswith(f"<outbox.{queued.id}.")
    assert run_message(queued) is None  # done: a second hand-off of the same message sends nothing
    assert len(mail.outbox) == 1


def test_a_webhook_is_posted_with_a_verifiable_hmac_signature():
    with HttpReceiver(status=204) as receiver:
        hook = Webhook.objects.create(name="ops", url=receiver.url, secret="s3cret")
        delivery = WebhookDelivery.objects.create(webhook=hook, event="incident.created", payload={"number": "INC1"})
        assert run_message(webhook_enqueue(delivery)) == "done"
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
        message = webhook_enqueue(delivery)
        assert run_message(message) == "failed"
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.response_code) == ("failed", 1, 410)
    message.refresh_from_db()
    assert (message.attempts, message.last_error) == (1, "HTTP 410")


def test_a_webhook_answering_5xx_is_retried_then_given_up():
    with HttpReceiver(status=503) as receiver:
        hook = Webhook.objects.create(name="flaky", url=receiver.url, secret="x")
        delivery = WebhookDelivery.objects.create(webhook=hook, event="incident.created", payload={})
        message = webhook_enqueue(delivery)
        delays = []
        assert run_message(message) == "pending"
        message.refresh_from_db()
        delays.append(round((message.next_attempt_at - timezone.now()).total_seconds()))
        assert run_message(message) is None  # not due yet: the backoff holds
        for _ in range(WEBHOOK_MAX_ATTEMPTS):  # let time pass: each retry runs once it is due
            if run_message(message, now=message.next_attempt_at) == "failed":
                break
            message.refresh_from_db()
            delays.append(round((message.next_attempt_at - timezone.now()).total_seconds()))
    delivery.refresh_from_db()
    assert delivery.state == "failed"
    assert delivery.attempts == WEBHOOK_MAX_ATTEMPTS == len(receiver.requests) == 9
    assert delivery.error.startswith("gave up after 9 attempts")
    message.refresh_from_db()
    assert (message.state, message.attempts) == ("failed", 9)
    assert delays == [5, 10, 20, 40, 80, 160, 320, 600]  # exponential backoff between attempts


def test_a_webhook_only_gets_the_events_it_subscribed_to(requester, incident_factory):
    Webhook.objects.create(name="comments-only", url="http://127.0.0.1:9/", secret="x", events=["incident.commented"])
    Webhook.objects.create(name="everything", url="http://127.0.0.1:9/", secret="x", events=[])
    incident_factory()
    assert list(WebhookDelivery.objects.values_list("webhook__name", flat=True)) == ["everything"]
