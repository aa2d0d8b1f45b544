"""The whole email channel as people live it, with every part real: a mail lands in Dovecot, the poller reads it,
a Celery worker turns it into an incident and mails the acknowledgement to an SMTP sink; the requester's mail
client answers that acknowledgement (quoting it, as clients do) and the answer lands on the same incident, with
the quote cut. An agent's public reply reaches the requester and the Cc'd colleague (now a watcher), an internal
note reaches nobody, the colleague's answer lands too, and an out-of-office reply to our mail draws nothing."""

import email
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import pytest

from email_channel.imap import mailbox_poll
from email_channel.models import InboundMessage
from servicedesk.models import OutboxMessage, TimelineEntry
from tests.email_channel.imap_fixtures import USER
from tests.workers import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

REQUESTER = "Rosa Requester <rosa@example.com>"
COLLEAGUE = "Carl Colleague <carl@example.com>"


def crlf(message: EmailMessage) -> bytes:
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def client_reply(to_mail, *, sender: str, text: str, extra: dict | None = None) -> bytes:
    """What a mail client sends when its user presses Reply on `to_mail`: Re: subject, In-Reply-To and
    References, and the whole mail quoted below an attribution line."""
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = "desk@example.com"
    reply["Subject"] = "Re: " + to_mail["Subject"]
    reply["Date"] = formatdate(localtime=True)
    reply["Message-ID"] = make_msgid(domain="example.com")
    reply["In-Reply-To"] = to_mail["Message-ID"]
    reply["References"] = " ".join(filter(None, [str(to_mail.get("References", "")), to_mail["Message-ID"]]))
    for name, value in (extra or {}).items():
        reply[name] = value
    quoted = "\n".join("> " + line for line in to_mail.get_body(("plain",)).get_content().splitlines())
    reply.set_content(f"{text}\n\nOn {to_mail['Date']}, Servicedesk wrote:\n{quoted}\n")
    return crlf(reply)


def sent_to(smtp, address: str) -> list[EmailMessage]:
    return [email.message_from_string(m["data"], policy=policy.default) for m in smtp.messages if address in m["to"]]


def poll(mailbox) -> int:
    result = mailbox_poll(mailbox_id=mailbox.id)
    assert result.error == "", result.error
    return result.stored


def comments(incident) -> list[tuple[str, str]]:
    return [(e.author.email, e.body) for e in TimelineEntry.objects.filter(
        object_id=incident.id, kind=TimelineEntry.Kind.COMMENT, content_type__model="incident").order_by("id")]


def test_a_mail_becomes_an_incident_and_the_replies_to_our_mail_thread_back_onto_it(
        trust_dovecot, make_mailbox, worker, smtp, tmp_path, agent):
    from incidents.models import Incident
    from incidents.services import incident_comment_add

    mailbox = make_mailbox("ssl")
    log = tmp_path / "worker.log"

    first = EmailMessage()
    first["From"], first["To"], first["Cc"] = REQUESTER, "desk@example.com", COLLEAGUE
    first["Subject"] = "Printer on floor 3 jams on every page"
    first["Date"], first["Message-ID"] = formatdate(localtime=True), make_msgid(domain="example.com")
    first.set_content("Hello,\n\nthe printer near the kitchen jams on every page since this morning.\n\nRosa\n")
    trust_dovecot.append(USER, crlf(first))
    assert poll(mailbox) == 1

    assert wait_for(lambda: Incident.objects.filter(title="Printer on floor 3 jams on every page").exists(),
                    timeout=60), log.read_text()[-3000:]
    incident = Incident.objects.get(title="Printer on floor 3 jams on every page")
    assert incident.channel == "email" and incident.requester.email == "rosa@example.com"

    # The acknowledgement our worker mailed, as the requester's client receives it.
    assert wait_for(lambda: sent_to(smtp, "rosa@example.com"), timeout=60), log.read_text()[-3000:]
    ack = sent_to(smtp, "rosa@example.com")[0]
    # It answers Rosa's own mail, so her client shows it in her conversation; References carry her mail, then
    # the ticket's thread root that every later mail of the ticket carries too.
    assert ack["Subject"] == f"[{incident.number}] Printer on floor 3 jams on every page"
    assert ack["In-Reply-To"] == first["Message-ID"]
    origin, root = ack["References"].split()
    assert origin == first["Message-ID"] and ack["Message-ID"] not in (origin, root)

    # Rosa answers it from her mail client: her words land on the incident, the quoted acknowledgement does not.
    trust_dovecot.append(USER, client_reply(ack, sender=REQUESTER, text="It jams on the duplex setting only."))
    assert poll(mailbox) == 1
    assert wait_for(lambda: len(comments(incident)) == 1, timeout=60), log.read_text()[-3000:]
    assert comments(incident) == [("rosa@example.com", "It jams on the duplex setting only.")]
    reply_row = InboundMessage.objects.get(mailbox=mailbox, uid=2)
    assert (reply_row.action, reply_row.ticket_number) == ("replied", incident.number)

    # An agent answers in the workspace and writes an internal note: Rosa and Carl (Cc'd, so a watcher) get
    # the answer, threaded; nobody gets the note.
    incident_comment_add(incident=incident, author=agent, body="A technician is on the way.")
    incident_comment_add(incident=incident, author=agent, body="Spare drum is in room 3.12", internal=True)
    def answer_to(address):
        return [m for m in sent_to(smtp, address) if "A technician is on the way." in m.get_body(("plain",)).get_content()]

    # Carl also heard of Rosa's reply above (watchers get every public reply); the agent's answer is its own mail.
    assert wait_for(lambda: answer_to("carl@example.com"), timeout=60), log.read_text()[-3000:]
    to_carl = answer_to("carl@example.com")
    # One conversation in every client: the same subject and References as the acknowledgement.
    assert len(to_carl) == 1 and to_carl[0]["References"] == f"{origin} {root}"
    assert to_carl[0]["Subject"] == ack["Subject"]
    assert wait_for(lambda: answer_to("rosa@example.com"), timeout=60)
    assert not [m for m in smtp.messages if "Spare drum" in m["data"]]

    # Carl answers the agent's mail: a watcher's reply lands as his comment.
    trust_dovecot.append(USER, client_reply(to_carl[0], sender=COLLEAGUE, text="Thanks, I will be at my desk."))
    # Rosa's out-of-office answers the same mail: stored, ignored, and it draws no mail from us.
    trust_dovecot.append(USER, client_reply(to_carl[0], sender=REQUESTER, text="I am away until Monday.",
                                            extra={"Auto-Submitted": "auto-replied"}))
    assert poll(mailbox) == 2
    assert wait_for(lambda: InboundMessage.objects.filter(mailbox=mailbox, state__in=("new",)).count() == 0,
                    timeout=60), log.read_text()[-3000:]
    assert comments(incident)[-1] == ("carl@example.com", "Thanks, I will be at my desk.")
    away = InboundMessage.objects.get(mailbox=mailbox, uid=4)
    assert away.state == "ignored" and "auto-reply" in away.reason
    assert "I am away" not in " ".join(body for _, body in comments(incident))
    assert poll(mailbox) == 0  # a second poll reads nothing new
    # Carl's comment mails Rosa; once the worker has sent everything queued, nothing mentions the out-of-office.
    assert wait_for(lambda: not OutboxMessage.objects.exclude(state=OutboxMessage.State.DONE).exists(),
                    timeout=60), log.read_text()[-3000:]
    assert [m for m in sent_to(smtp, "rosa@example.com")
            if "Thanks, I will be at my desk." in m.get_body(("plain",)).get_content()]
    assert not [m for m in smtp.messages if "I am away" in m["data"]]
