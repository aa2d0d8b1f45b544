"""Fixtures of the IMAP poller's tests: a real Dovecot (tests.peers.Dovecot, Debian's dovecot-imapd) per test
and mailboxes pointed at it."""

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import pytest

from tests.peers import Dovecot

USER, PASSWORD = "desk", "desk-pass-1"


@pytest.fixture
def dovecot():
    with Dovecot(users={USER: PASSWORD}) as server:
        yield server


@pytest.fixture
def trust_dovecot(settings, dovecot):
    """Verify the test server's certificate with the test's CA (EMAIL_IMAP_CA_FILE), as with a private CA."""
    settings.EMAIL_IMAP_CA_FILE = dovecot.ca_file
    settings.EMAIL_IMAP_TIMEOUT = 5
    return dovecot


@pytest.fixture
def make_mailbox(db, dovecot):
    from email_channel.models import Mailbox

    counter = {"n": 0}

    def make(security="ssl", **fields):
        counter["n"] += 1
        port = {"ssl": dovecot.imaps_port, "starttls": dovecot.imap_port, "plain": dovecot.imap_port}[security]
        values = {"name": f"Desk {counter['n']}", "address": "desk@example.com", "host": "127.0.0.1", "port": port,
                  "security": security, "username": USER, "password": PASSWORD, "poll_seconds": 60}
        values.update(fields)
        return Mailbox.objects.create(**values)

    return make


def mail(subject: str, *, sender: str = "Carla Caller <carla@example.com>", body: str = "",
         message_id: str | None = None) -> bytes:
    """A plain-text mail as a person's client sends it (CRLF line ends, as IMAP keeps them)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "desk@example.com"
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = message_id or make_msgid(domain="example.com")
    message.set_content(body or f"{subject}: please have a look.\n")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
