"""Builders for the inbound tests: mailboxes, mails made with the stdlib EmailMessage API (or read from the
PARSE helper's samples), and the store-then-process path a poll or the pipe takes."""

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from email_channel.demo import demo_png
from email_channel.models import InboundMessage, Mailbox
from email_channel.processing import inbound_process, inbound_store

SAMPLES = Path(__file__).resolve().parent / "samples"
DESK = "support@desk.example"


def mailbox_make(**kwargs) -> Mailbox:
    kwargs.setdefault("name", "Support")
    kwargs.setdefault("address", DESK)
    kwargs.setdefault("host", "imap.desk.example")
    kwargs.setdefault("username", DESK)
    return Mailbox.objects.create(**kwargs)


def mail(*, sender="Alice Able <alice@example.com>", subject="Printer on floor 2 jams", text="It jams on every page.",
         to=DESK, cc=None, headers=None, attachments=(), message_id=None) -> bytes:
    """A mail as a client sends it. `attachments`: (filename, bytes, "type/subtype")."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = message_id or make_msgid(domain="example.com")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    for filename, payload, content_type in attachments:
        maintype, subtype = content_type.split("/", 1)
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def png() -> bytes:
    return demo_png()


def deliver(mailbox: Mailbox, raw: bytes, **kwargs) -> InboundMessage:
    """Store the mail as the pipe does and process it here (the outbox message stays for a worker: a no-op)."""
    stored = inbound_store(mailbox=mailbox, raw=raw, source=kwargs.pop("source", InboundMessage.Source.PIPE),
                           **kwargs)
    return inbound_process(message_id=stored.id)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()
