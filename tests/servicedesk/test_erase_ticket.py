"""`manage.py erase_ticket`: the one way a ticket is deleted (data protection), with an audit row."""

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from incidents.models import Incident
from incidents.services import incident_comment_add
from servicedesk.models import Attachment, AuditLog, TimelineEntry, Webhook, WebhookDelivery
from servicedesk.services import attachment_add

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(make_user):
    return make_user("admin", username="dpo")


@pytest.fixture
def ticket(incident_factory, requester, agent, settings):
    Webhook.objects.create(name="Chat", url="https://hooks.example.com/x", secret="s")
    incident = incident_factory(title="Alice Able's laptop was stolen", description="Home address: 1 Main St")
    incident_comment_add(incident=incident, author=agent, body="Please call us on 555-0100")
    attachment = attachment_add(ticket=incident, by=requester,
                                upload=SimpleUploadedFile("police-report.pdf", b"%PDF-1.4 report", "application/pdf"))
    path = Path(settings.MEDIA_ROOT) / attachment.file.name
    assert path.exists()
    return incident, path


def erase(number, *args, stdin=None):
    out = io.StringIO()
    call_command("erase_ticket", number, *args, stdout=out, stdin=stdin)
    return out.getvalue()


def test_it_erases_the_ticket_its_timeline_attachments_and_files_and_audits_who_and_why(
    ticket, operator, django_capture_on_commit_callbacks
):
    incident, path = ticket
    assert WebhookDelivery.objects.filter(payload__number=incident.number).exists()
    with django_capture_on_commit_callbacks() as callbacks:
        output = erase(incident.number, "--by", "dpo", "--reason", "GDPR art. 17 request #42", "--yes")
        assert path.exists(), "files go only once the erasure commits"
    for callback in callbacks:
        callback()

    assert f"Erased {incident.number}" in output
    assert not Incident.objects.filter(id=incident.id).exists()
    assert not TimelineEntry.objects.filter(object_id=incident.id).exists()
    assert not Attachment.objects.exists()
    assert not path.exists() and not path.parent.exists()
    assert not WebhookDelivery.objects.filter(payload__number=incident.number).exists()
    log = AuditLog.objects.get(action="ticket.erased")
    assert log.actor == operator and log.object_repr == incident.number
    assert log.changes["reason"] == "GDPR art. 17 request #42"
    assert log.changes["attachments"] == 1 and log.changes["files"] == 1 and log.changes["timeline_entries"] >= 3
    trail = str(list(AuditLog.objects.values_list("object_repr", "changes")))
    assert "stolen" not in trail and "Main St" not in trail, "no content of the ticket is left in the audit trail"
    assert AuditLog.objects.filter(action="incident.created", object_repr=incident.number).exists()


def test_it_asks_for_the_number_and_erases_nothing_when_not_confirmed(ticket, operator):
    incident, path = ticket
    with pytest.raises(CommandError, match="not confirmed: nothing was erased"):
        erase(incident.number, "--by", "dpo", "--reason", "request", stdin=io.StringIO("yes\n"))
    assert Incident.objects.filter(id=incident.id).exists() and path.exists()
    assert not AuditLog.objects.filter(action="ticket.erased").exists()


def test_it_erases_after_the_number_is_typed(ticket, operator):
    incident, _ = ticket
    output = erase(incident.number.lower(), "--by", "dpo", "--reason", "request",
                   stdin=io.StringIO(f"{incident.number}\n"))
    assert f"Type {incident.number} to confirm" in output
    assert not Incident.objects.filter(id=incident.id).exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--by", "agnes", "--reason", "r"], "by: only an active admin may erase a ticket"),
    (["--by", "nobody", "--reason", "r"], "--by: there is no user 'nobody'"),
    (["--by", "dpo", "--reason", "  "], "reason: say why the ticket is erased"),
])
def test_it_refuses_a_non_admin_an_unknown_operator_or_no_reason(ticket, operator, args, message):
    incident, path = ticket
    with pytest.raises(CommandError, match=message):
        erase(incident.number, *args, "--yes")
    assert Incident.objects.filter(id=incident.id).exists() and path.exists()


@pytest.mark.parametrize(("number", "message"), [
    ("XYZ0001", "number: 'XYZ0001' is not a ticket number"),
    ("INC9999999", "there is no incident INC9999999"),
])
def test_it_names_an_unknown_number(operator, number, message):
    with pytest.raises(CommandError, match=message):
        erase(number, "--by", "dpo", "--reason", "r", "--yes")


def test_it_unlinks_children_of_an_erased_parent_and_keeps_them(incident_factory, operator, agent):
    from incidents.services import incident_update

    parent, child = incident_factory(title="Mail down"), incident_factory(title="No mail on floor 2")
    incident_update(incident_id=child.id, actor=agent, parent=parent)
    erase(parent.number, "--by", "dpo", "--reason", "r", "--yes")
    child.refresh_from_db()
    assert child.parent is None


def test_it_erases_the_copies_kept_for_retries_and_replays(ticket, operator, client_for, agent):
    """Outbox messages (mail and webhooks about the ticket) and a stored API response carry its content."""
    from servicedesk.models import IdempotencyKey, OutboxMessage

    incident, _ = ticket
    created = client_for(agent).post("/api/v1/incidents/", {"title": "Stolen badge of Alice Able",
                                                            "requester": "alice"},
                                     format="json", HTTP_IDEMPOTENCY_KEY="erase-me-1")
    assert created.status_code == 201
    number = created.json()["number"]
    assert OutboxMessage.objects.filter(payload__icontains=number).exists()
    assert IdempotencyKey.objects.filter(key="erase-me-1").exists()
    other = OutboxMessage.objects.filter(payload__icontains=incident.number).count()
    assert other > 0

    erase(number, "--by", "dpo", "--reason", "request #43", "--yes")

    assert not OutboxMessage.objects.filter(payload__icontains=number).exists()
    assert not IdempotencyKey.objects.filter(key="erase-me-1").exists()
    assert OutboxMessage.objects.filter(payload__icontains=incident.number).count() == other  # others stay
    log = AuditLog.objects.get(action="ticket.erased")
    assert log.changes["idempotency_keys"] == 1 and log.changes["outbox_messages"] >= 1


# --- what other apps keep about the ticket (review item 6) ----------------------------------------------


def _mail(subject: str, body: str, **headers) -> bytes:
    from email.message import EmailMessage
    from email.utils import make_msgid

    message = EmailMessage()
    message["From"] = "Alice Able <alice@example.com>"
    message["To"] = "support@desk.example"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="mail.example.com")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


def test_erasing_a_ticket_erases_the_mails_that_raised_and_answered_it(requester, operator, agent, admin_user,
                                                                      client):
    from email_channel.models import InboundMessage, Mailbox
    from email_channel.processing import inbound_process, inbound_store
    from servicedesk.mailthread import thread_root

    mailbox = Mailbox.objects.create(name="Support", address="support@desk.example", host="h", username="u")

    def deliver(raw):
        return inbound_process(message_id=inbound_store(mailbox=mailbox, raw=raw, source="pipe").id)

    raised = deliver(_mail("Laptop stolen", "It had my home address on a sticker: 1 Main St"))
    assert raised.action == "created"
    incident = Incident.objects.get(id=raised.ticket_id)
    replied = deliver(_mail(f"Re: [{incident.number}] Laptop stolen", "Police report number 4711",
                            In_Reply_To=thread_root("incident", incident.id)))
    assert (replied.action, replied.ticket_id) == ("replied", incident.id)
    other = deliver(_mail("Printer jammed", "Floor 3"))  # another ticket's mail stays
    client.force_login(admin_user)
    assert client.get(f"/agent/mail/{raised.id}/").status_code == 200

    erase(incident.number, "--by", "dpo", "--reason", "GDPR art. 17", "--yes")

    # Kept as tombstones (the Message-ID, so a copy read again is known as erased), with nothing personal left.
    for row in InboundMessage.objects.filter(id__in=[raised.id, replied.id]):
        assert (bytes(row.raw), row.size, row.subject, row.from_address) == (b"", 0, "", "")
        assert row.reason.startswith(f"erased with {incident.number}") and row.message_id
    untouched = InboundMessage.objects.get(id=other.id)
    assert untouched.size > 0 and b"Floor 3" in bytes(untouched.raw)
    page = client.get(f"/agent/mail/{raised.id}/")
    assert page.status_code == 200 and b"was erased" in page.content and b"1 Main St" not in page.content
    assert AuditLog.objects.get(action="ticket.erased").changes["other_apps"] == 2


def test_a_failing_erase_hook_undoes_the_whole_erasure(ticket, operator):
    from servicedesk.registry import registry

    incident, path = ticket
    seen = []

    def refuse(kind, ticket_id):
        seen.append((kind, ticket_id))
        raise RuntimeError("the archive is read-only")

    registry.ticket_erase_hook(refuse)
    try:
        with pytest.raises(RuntimeError):
            erase(incident.number, "--by", "dpo", "--reason", "request", "--yes")
    finally:
        registry.erase_hooks.remove(refuse)
    assert seen == [("incident", incident.id)]
    assert Incident.objects.filter(id=incident.id).exists() and TimelineEntry.objects.filter(
        object_id=incident.id).exists()
    assert not AuditLog.objects.filter(action="ticket.erased").exists()
