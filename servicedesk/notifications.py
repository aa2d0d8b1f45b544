"""Outbound notifications: templated email and signed webhooks, both sent by Celery after commit.

Email: `email_enqueue(template="incident_created", to=[...], context={...})` renders
templates/email/<template>.subject.txt, .txt and (optional) .html in the worker.

Webhooks: `webhooks_emit("incident.created", payload)` stores one delivery per interested webhook in the
caller's transaction and queues them on commit. Each POST carries
    X-Servicedesk-Event: incident.created
    X-Servicedesk-Delivery: <delivery id>
    X-Servicedesk-Timestamp: <unix seconds>
    X-Servicedesk-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed with the secret>
so a receiver can check both origin and freshness (see `webhook_signature`).
"""

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.serializers.json import DjangoJSONEncoder
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone

from servicedesk.models import Webhook, WebhookDelivery
from servicedesk.tasking import enqueue_on_commit

log = logging.getLogger(__name__)

USER_AGENT = "Servicedesk-Webhooks/1"
WEBHOOK_TIMEOUT_SECONDS = 10


def email_enqueue(*, template: str, to: list[str], context: dict) -> None:
    recipients = sorted({address for address in to if address})
    if not recipients:
        return
    from servicedesk.tasks import email_send

    context = json.loads(json.dumps(context, cls=DjangoJSONEncoder))  # plain values only over the broker
    enqueue_on_commit(email_send, template=template, to=recipients, context=context)


def email_render_and_send(*, template: str, to: list[str], context: dict) -> int:
    context = {"site_url": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"email/{template}.subject.txt", context).split())
    text = render_to_string(f"email/{template}.txt", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=to)
    try:
        message.attach_alternative(render_to_string(f"email/{template}.html", context), "text/html")
    except TemplateDoesNotExist:
        pass
    return message.send()


def webhooks_emit(event: str, payload: dict) -> list[int]:
    """Record a delivery for each active webhook that wants `event`; send them after commit."""
    from servicedesk.tasks import webhook_deliver

    body = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    deliveries = [
        WebhookDelivery(webhook=hook, event=event, payload=body)
        for hook in Webhook.objects.filter(active=True)
        if hook.wants(event)
    ]
    WebhookDelivery.objects.bulk_create(deliveries)
    for delivery in deliveries:
        enqueue_on_commit(webhook_deliver, delivery_id=delivery.id)
    return [d.id for d in deliveries]


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookTransientError(Exception):
    """The receiver could not be reached or answered 5xx/429: worth another try."""


def webhook_send(delivery_id: int) -> WebhookDelivery:
    """POST one delivery. Raises WebhookTransientError when a retry may succeed."""
    delivery = WebhookDelivery.objects.select_related("webhook").get(id=delivery_id)
    if delivery.state == WebhookDelivery.State.DELIVERED:
        return delivery  # a retried task after success changes nothing
    hook = delivery.webhook
    body = json.dumps(
        {"event": delivery.event, "delivery": delivery.id, "created_at": delivery.created_at.isoformat(),
         "data": delivery.payload},
        separators=(",", ":"),
    ).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        hook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Servicedesk-Event": delivery.event,
            "X-Servicedesk-Delivery": str(delivery.id),
            "X-Servicedesk-Timestamp": timestamp,
            "X-Servicedesk-Signature": webhook_signature(hook.secret, timestamp, body),
        },
    )
    delivery.attempts += 1
    code, error = None, ""
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310 (admin-set URL)
            code = response.status
    except urllib.error.HTTPError as exc:
        code, error = exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        error = f"unreachable: {exc}"
    delivery.response_code = code
    delivery.error = error
    if code is not None and 200 <= code < 300:
        delivery.state = WebhookDelivery.State.DELIVERED
        delivery.delivered_at = timezone.now()
        delivery.error = ""
    transient = code is None or code >= 500 or code == 429
    if not transient and delivery.state != WebhookDelivery.State.DELIVERED:
        delivery.state = WebhookDelivery.State.FAILED  # 4xx: the receiver refuses it; retrying won't help
    delivery.save(update_fields=["attempts", "response_code", "error", "state", "delivered_at"])
    if transient and delivery.state != WebhookDelivery.State.DELIVERED:
        raise WebhookTransientError(error)
    return delivery


def webhook_give_up(delivery_id: int, error: str) -> None:
    WebhookDelivery.objects.filter(id=delivery_id).exclude(state=WebhookDelivery.State.DELIVERED).update(
        state=WebhookDelivery.State.FAILED, error=error[:2000]
    )
