"""Outbound notifications: templated email and signed webhooks, both outbox messages (servicedesk.outbox).

Email: `email_enqueue(template="incident_created", to=[...], context={...}, thread=incident)` writes an
"email.send" message in the caller's transaction; the worker renders templates/email/<template>.subject.txt, .txt and
(optional) .html and sends it. The message is marked done in the transaction that claimed it, so one
message sends one mail; its Message-ID is derived from the message, so even a re-send after a crash
carries the same Message-ID. Mail about a ticket (`thread=`) threads: servicedesk.mailthread.

Webhooks: `webhooks_emit("incident.created", payload)` stores one delivery per interested webhook and one
"webhook.deliver" message per delivery in the caller's transaction. Each POST carries
    X-Servicedesk-Event: incident.created
    X-Servicedesk-Delivery: <delivery id>
    X-Servicedesk-Timestamp: <unix seconds>
    X-Servicedesk-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed with the secret>
so a receiver can check both origin and freshness (see `webhook_signature`), and drop a repeated delivery
id (delivery is at least once). 5xx, 429 and an unreachable receiver are retried with exponential backoff
(9 attempts); a 4xx fails at once. Every attempt is recorded on the delivery.
"""

import hashlib
import hmac
import json
import logging
import smtplib
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.serializers.json import DjangoJSONEncoder
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone

from servicedesk.mailthread import (
    OUR_HEADER,
    REPLY_MARKER,
    mail_domain,
    subject_tag,
    subject_tagged,
    thread_origin,
    thread_root,
    ticket_kind_of,
)
from servicedesk.models import OutboxMessage, Webhook, WebhookDelivery
from servicedesk.outbox import Fail, Retry, outbox_enqueue, outbox_enqueue_many, outbox_handler

log = logging.getLogger(__name__)

USER_AGENT = "Servicedesk-Webhooks/1"
WEBHOOK_TIMEOUT_SECONDS = 10
WEBHOOK_MAX_ATTEMPTS = 9


def team_addresses(team) -> list[str]:
    """Where mail for a team goes: its shared address, else its active members' addresses."""
    if team is None:
        return []
    if team.email:
        return [team.email]
    return list(team.members.filter(is_active=True).exclude(email="").values_list("email", flat=True))


def email_enqueue(*, template: str, to: list[str], context: dict, thread=None, internal: bool = False) -> None:
    """Queue one mail (one outbox message) to `to`. `thread`: the ticket the mail is about (any Ticket
    subclass); the mail then threads with every other mail of that ticket (servicedesk.mailthread).
    `internal`: the mail goes to agents only (an assignment, a team alert, an approval request...): a reply
    to it by mail becomes an internal note, never a public reply, and it keeps its template's subject; mail
    to the requester's side is public and its subject is the ticket's, "[NUMBER] <title>"."""
    recipients = sorted({address for address in to if address})
    if not recipients:
        return
    payload = {"template": template, "to": recipients, "context": context}
    if thread is not None:
        payload["thread"] = {"kind": ticket_kind_of(thread), "id": thread.pk, "number": thread.number,
                             "title": thread.title, "internal": bool(internal)}
    outbox_enqueue("email.send", payload)


def email_render_and_send(*, template: str, to: list[str], context: dict, message_id: str = "",
                          thread: dict | None = None) -> int:
    """Render and send one mail. Every mail says it was sent by a machine (Auto-Submitted), so well-behaved
    auto-responders stay quiet. A ticket's mail (`thread`: kind, id, number, title, internal) also carries the
    number tag in the subject, In-Reply-To and References to the ticket's thread root, X-Servicedesk-Ticket, a
    request not to auto-reply (X-Auto-Response-Suppress, for Exchange), Reply-To when EMAIL_REPLY_TO is set,
    and the reply marker on top of the text and the HTML, above which a reply by mail is read.

    Internal mail answers the ticket's internal root only (In-Reply-To and References): never the public root
    nor the requester's mail, so a reply to it is known as internal by the root alone.

    Public mail (not `internal`) keeps one conversation in the requester's client: its subject is always
    "[NUMBER] <title>" (the event is the body's first line), and it answers the mail that started the ticket
    when there is one (In-Reply-To, and first in References before the root; one query)."""
    context = {"site_url": settings.SITE_URL, **context}
    if thread:
        context["reply_marker"] = REPLY_MARKER
    subject = " ".join(render_to_string(f"email/{template}.subject.txt", context).split())
    text = render_to_string(f"email/{template}.txt", context)
    headers = {"Auto-Submitted": "auto-generated"}
    if message_id:
        headers["Message-ID"] = message_id
    reply_to = None
    if thread:
        # Internal mail answers only the ticket's internal root: no public id a reply could keep instead.
        references = [thread_root(thread["kind"], thread["id"], internal=bool(thread.get("internal")))]
        if not thread.get("internal"):
            title = " ".join(str(thread.get("title") or "").split())
            if title:
                subject = f"{subject_tag(thread['number'])} {title}"
            origin = thread_origin(thread["kind"], thread["id"])
            if origin:
                references.insert(0, origin)
        subject = subject_tagged(subject, thread["number"])
        text = f"{REPLY_MARKER}\n\n{text}"
        headers.update({"In-Reply-To": references[0], "References": " ".join(references),
                        "X-Auto-Response-Suppress": "All", OUR_HEADER: thread["number"]})
        if settings.EMAIL_REPLY_TO:
            reply_to = [settings.EMAIL_REPLY_TO]
    message = EmailMultiAlternatives(subject=subject, body=text, to=to, headers=headers, reply_to=reply_to)
    try:
        message.attach_alternative(render_to_string(f"email/{template}.html", context), "text/html")
    except TemplateDoesNotExist:
        pass
    return message.send()


def email_message_id(message: OutboxMessage, *, recipient: int = 0) -> str:
    """A Message-ID fixed by the outbox message and the recipient's index in its `to` (each recipient gets a
    mail of its own), so a re-sent copy is recognisably the same mail (and a reply to it leads back to its
    ticket: servicedesk.mailthread.thread_of). Internal mail's id says so (".internal"), so a reply to it is
    known as one even after the outbox has purged the message."""
    thread = (message.payload or {}).get("thread")
    internal = ".internal" if isinstance(thread, dict) and thread.get("internal") else ""
    stamp = int(message.created_at.timestamp())
    return f"<outbox.{message.id}.{stamp}.r{int(recipient)}{internal}@{mail_domain()}>"


@outbox_handler("email.send", retry_on=(OSError,), max_attempts=9, queue="notifications")  # smtplib's errors are OSErrors
def _email_send(message: OutboxMessage) -> Retry | Fail | None:
    """One mail per recipient, each To: only its own address: watchers (people outside too) never see each
    other's or the requester's address. What happened to each recipient is kept in the payload ("sent", and
    "refused" with the server's answer), so a retry sends only to those still waiting. A recipient the server
    refuses for good (5xx, e.g. a mailbox that no longer exists) is given up alone; one it refuses for now (4xx)
    is tried again later, after the others have theirs; a lost connection stops the round."""
    payload = message.payload
    sent = set(payload.get("sent") or ())
    refused = dict(payload.get("refused") or {})
    waiting = None
    for index, address in enumerate(payload["to"]):
        if index in sent or str(index) in refused:
            continue
        try:
            email_render_and_send(template=payload["template"], to=[address], context=payload["context"],
                                  message_id=email_message_id(message, recipient=index),
                                  thread=payload.get("thread"))
        except smtplib.SMTPRecipientsRefused as exc:
            code, answer = next(iter(exc.recipients.values()), (0, b""))
            if code >= 500:
                refused[str(index)] = f"{address}: {code} {answer.decode(errors='replace') if isinstance(answer, bytes) else answer}"
                log.warning("mail %s: %s refused for good, left out", message.id, refused[str(index)])
                continue
            waiting = waiting or exc
            continue
        except OSError as exc:
            waiting = exc
            break
        sent.add(index)
    payload["sent"], payload["refused"] = sorted(sent), refused
    OutboxMessage.objects.filter(id=message.id).update(payload=payload)
    if waiting is not None:
        return Retry(f"{waiting.__class__.__name__}: {waiting} ({len(sent)} of {len(payload['to'])} sent)")
    if refused and not sent:
        return Fail("every recipient was refused: " + "; ".join(refused.values()))
    return None


def webhooks_emit(event: str, payload: dict) -> list[int]:
    """Record a delivery for each active webhook that wants `event`; send them after commit."""
    body = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    deliveries = [
        WebhookDelivery(webhook=hook, event=event, payload=body)
        for hook in Webhook.objects.filter(active=True)
        if hook.wants(event)
    ]
    WebhookDelivery.objects.bulk_create(deliveries)
    outbox_enqueue_many("webhook.deliver", [{"delivery_id": d.id} for d in deliveries])
    return [d.id for d in deliveries]


def webhook_enqueue(delivery: WebhookDelivery) -> OutboxMessage:
    """Queue (again) one stored delivery."""
    return outbox_enqueue("webhook.deliver", {"delivery_id": delivery.id})


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


def _webhook_give_up(message: OutboxMessage, error: str) -> None:
    webhook_give_up(message.payload["delivery_id"], error)


@outbox_handler("webhook.deliver", max_attempts=WEBHOOK_MAX_ATTEMPTS, on_give_up=_webhook_give_up,
                queue="notifications")
def _webhook_deliver(message: OutboxMessage) -> Retry | Fail | None:
    """One attempt; the delivery row keeps what happened (attempts, code, error) whatever the outcome."""
    try:
        delivery = webhook_send(message.payload["delivery_id"])
    except WebhookDelivery.DoesNotExist:
        return Fail("the delivery was deleted")
    except WebhookTransientError as exc:
        return Retry(str(exc))
    if delivery.state == WebhookDelivery.State.FAILED:
        return Fail(delivery.error)
    return None
