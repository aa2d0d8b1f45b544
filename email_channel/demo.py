"""Demo data of the email channel: one mailbox (inactive: imap.example.com does not exist) and three mails
through the real store-and-process path, so admin's mail list and the incident's timeline show the channel
working: a new incident from the demo requester with a screenshot, her reply threading by the subject's number
tag, and an out-of-office auto-reply that is ignored. Idempotent: nothing is added once the mailbox has mail."""

import zlib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape

from django.contrib.auth import get_user_model

from email_channel.models import InboundMessage, Mailbox
from email_channel.processing import inbound_process, inbound_store
from servicedesk.models import Team

MAILBOX_NAME = "Service desk inbox"
MAILBOX_ADDRESS = "servicedesk@example.com"
# The incidents the demo's mails open (tests counting the generated demo incidents leave these out).
TITLES = ("Docking station does not charge my laptop",)


def demo_png() -> bytes:
    """A small real PNG (a 16x16 grey square): the attachment rules judge files by their content."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    rows = b"".join(b"\x00" + b"\x80" * 16 for _ in range(16))
    header = (16).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _mail(*, sender: str, subject: str, text: str, headers: dict | None = None,
          attachment: tuple[str, bytes] | None = None) -> tuple[bytes, str]:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = f"Service Desk <{MAILBOX_ADDRESS}>"
    mail["Subject"] = subject
    mail["Date"] = formatdate(localtime=True)
    message_id = make_msgid(domain="example.com")
    mail["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(text)
    if attachment:
        # As mail clients send a pasted picture: an HTML alternative showing it inline (multipart/related), the
        # plain text beside it. The channel keeps the picture as an attachment and agents see the HTML as sent.
        cid = make_msgid(domain="example.com")
        paragraphs = "".join(f"<p>{escape(line)}</p>" for line in text.split("\n\n"))
        mail.add_alternative(f'<html><body>{paragraphs}<p><img src="cid:{cid[1:-1]}" alt="{attachment[0]}" '
                             f'width="160" height="160"></p></body></html>', subtype="html")
        mail.get_payload()[1].add_related(attachment[1], maintype="image", subtype="png", cid=cid,
                                          filename=attachment[0], disposition="inline")
    return mail.as_bytes(), message_id


def seed_email() -> str:
    mailbox, _ = Mailbox.objects.get_or_create(
        name=MAILBOX_NAME,
        defaults={"address": MAILBOX_ADDRESS, "active": False, "host": "imap.example.com",
                  "username": MAILBOX_ADDRESS, "creates": Mailbox.Creates.INCIDENT,
                  "team": Team.objects.filter(name="Service Desk").first()},
    )
    if InboundMessage.objects.filter(mailbox=mailbox).exists():
        return "demo mailbox already has mail"
    requester = get_user_model().objects.filter(username="requester").first()
    if requester is None:
        return "no demo requester, no mail"
    sender = f"{requester.get_full_name() or requester.username} <{requester.email}>"

    def deliver(raw: bytes) -> InboundMessage:
        stored = inbound_store(mailbox=mailbox, raw=raw, source=InboundMessage.Source.PIPE)
        return inbound_process(message_id=stored.id)

    subject = TITLES[0]
    raw, first_id = _mail(
        sender=sender, subject=subject,
        text="Hello,\n\nsince this morning my docking station no longer charges the laptop; the screens work.\n"
             "A photo of the warning is attached.\n\nRita",
        attachment=("warning.png", demo_png()),
    )
    created = deliver(raw)
    outcomes = [created]
    if created.ticket_number:
        raw, _ = _mail(
            sender=sender, subject=f"Re: [{created.ticket_number}] {subject}",
            headers={"In-Reply-To": first_id, "References": first_id},
            text="It also happens with the spare power supply from the cupboard.\n\n"
                 f"On {formatdate(localtime=True)}, Rita wrote:\n> Hello,\n> since this morning my docking station...",
        )
        outcomes.append(deliver(raw))
    raw, _ = _mail(
        sender=sender, subject=f"Automatic reply: {subject}",
        headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"},
        text="I am out of the office until Monday and will read your mail when I am back.",
    )
    outcomes.append(deliver(raw))
    summary = ", ".join(f"{m.action or m.state} {m.ticket_number}".strip() for m in outcomes)
    failed = [m for m in outcomes if m.state == InboundMessage.State.FAILED]
    if failed:
        summary += "; failed: " + "; ".join(m.error[:80] for m in failed)
    return f"1 mailbox, {len(outcomes)} mails ({summary})"

