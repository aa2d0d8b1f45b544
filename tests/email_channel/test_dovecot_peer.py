"""The real IMAP peer of the email channel tests (tests.peers.Dovecot) and the connection-dropping proxy.

Dovecot is Debian's dovecot-imapd, started with a throwaway configuration on free 127.0.0.1 ports; these
tests fail (never skip) when it is not installed. They check what the channel's tests build on: messages
appended through IMAP come back byte for byte over implicit TLS and over STARTTLS with the certificate
verified, plain IMAP works for the "no encryption" setting, and a fetch cut mid-way raises in the client
while a second connection still sees everything."""

import imaplib
import os
import socket
import ssl
from pathlib import Path

import pytest
from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted

from email_channel.parsing import mail_parse
from tests.peers import Dovecot, DroppingProxy

SAMPLES = Path(__file__).resolve().parent / "samples"
USER, PASSWORD = "helpdesk", "Mailbox-pass-1"
FIRST = (SAMPLES / "iso_8859_1.eml").read_bytes()
SECOND = (SAMPLES / "attachments.eml").read_bytes()


@pytest.fixture(scope="module")
def dovecot():
    with Dovecot(users={USER: PASSWORD, "other": "Other-pass-2"}) as server:
        assert server.append(USER, FIRST) == 1
        assert server.append(USER, SECOND) == 2
        yield server


def crlf(raw: bytes) -> bytes:
    """What an IMAP server stores and hands back: the message with CRLF line ends."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def fetched(box) -> list[tuple[str, bytes]]:
    return [(message.uid, message.obj.as_bytes()) for message in box.fetch(mark_seen=False)]


def subjects(box) -> list[str]:
    return [mail_parse(message.obj.as_bytes()).subject for message in box.fetch(mark_seen=False)]


def test_it_serves_appended_messages_over_imaps_with_the_certificate_verified(dovecot):
    context = ssl.create_default_context(cafile=dovecot.ca_file)
    with MailBox("127.0.0.1", dovecot.imaps_port, ssl_context=context).login(USER, PASSWORD) as box:
        uids = box.uids()
        raws = [msg for msg in box.fetch(mark_seen=False, bulk=True)]
        assert uids == ["1", "2"]
        assert [m.subject for m in raws] == ["Écran de connexion : « mot de passe expiré »",
                                             "Rechnung fehlt im Portal"]
        # byte for byte what was appended (with CRLF, as IMAP stores it)
        assert crlf(FIRST) == crlf(box.client.uid("FETCH", "1", "(BODY.PEEK[])")[1][0][1])
        status = box.folder.status("INBOX")
        assert status["MESSAGES"] == 2 and status["UIDVALIDITY"] > 0


def test_it_speaks_starttls_on_the_imap_port(dovecot):
    context = ssl.create_default_context(cafile=dovecot.ca_file)
    with MailBoxStartTls("127.0.0.1", dovecot.imap_port, ssl_context=context).login(USER, PASSWORD) as box:
        assert isinstance(box.client.sock, ssl.SSLSocket)
        assert subjects(box) == ["Écran de connexion : « mot de passe expiré »", "Rechnung fehlt im Portal"]


def test_plain_imap_login_works_for_local_test_servers(dovecot):
    with MailBoxUnencrypted("127.0.0.1", dovecot.imap_port).login(USER, PASSWORD) as box:
        assert not isinstance(box.client.sock, ssl.SSLSocket)
        assert box.uids() == ["1", "2"]


def test_a_client_without_the_ca_refuses_the_server(dovecot):
    with pytest.raises(ssl.SSLCertVerificationError):
        MailBox("127.0.0.1", dovecot.imaps_port, ssl_context=ssl.create_default_context())


def test_users_have_their_own_mailboxes_and_passwords(dovecot):
    with MailBox("127.0.0.1", dovecot.imaps_port, ssl_context=dovecot.ssl_context()).login(
            "other", "Other-pass-2") as box:
        assert box.uids() == []
    with pytest.raises(Exception, match="(?i)authentication failed"):
        MailBoxUnencrypted("127.0.0.1", dovecot.imap_port).login(USER, "wrong")


def test_append_to_another_folder_returns_its_uid(dovecot):
    assert dovecot.append("other", FIRST, folder="Archive") == 1
    with dovecot.mailbox("other") as box:
        box.folder.set("Archive")
        assert box.uids() == ["1"]


def test_the_proxy_drops_a_fetch_mid_way_and_the_next_connection_sees_everything(dovecot):
    with DroppingProxy(dovecot.imap_port, on_command=b"UID FETCH", then_bytes=300) as proxy:
        box = MailBoxUnencrypted("127.0.0.1", proxy.port).login(USER, PASSWORD)
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            list(box.fetch(mark_seen=False, bulk=True))
        assert proxy.cuts == 1
        # the client got 300 bytes of the answer (a partial literal), not the messages
        assert proxy.server_bytes[0] < len(FIRST) + len(SECOND)
        with MailBoxUnencrypted("127.0.0.1", proxy.port).login(USER, PASSWORD) as again:
            assert subjects(again) == ["Écran de connexion : « mot de passe expiré »", "Rechnung fehlt im Portal"]
        assert (proxy.connections, proxy.cuts) == (2, 1)


def test_the_proxy_cuts_tls_after_a_byte_budget(dovecot):
    # measure one whole session through a proxy that only counts, then cut the same session before its end
    with DroppingProxy(dovecot.imaps_port, drops=0) as counting:
        with MailBox("127.0.0.1", counting.port, ssl_context=dovecot.ssl_context()).login(USER, PASSWORD) as box:
            assert len(fetched(box)) == 2
    whole = counting.server_bytes[0]
    assert whole > len(FIRST) + len(SECOND)
    with DroppingProxy(dovecot.imaps_port, after_bytes=whole - 1500) as proxy:
        box = MailBox("127.0.0.1", proxy.port, ssl_context=dovecot.ssl_context()).login(USER, PASSWORD)
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            fetched(box)
        assert proxy.cuts == 1 and proxy.server_bytes[0] == whole - 1500
        with MailBox("127.0.0.1", proxy.port, ssl_context=dovecot.ssl_context()).login(USER, PASSWORD) as box:
            assert [uid for uid, _ in fetched(box)] == ["1", "2"]


def test_it_stops_by_pid_and_leaves_nothing_behind():
    with Dovecot() as server:
        pid = server.process.pid
        root = server.root
        port = server.imaps_port
        assert Path(f"/proc/{pid}").exists()
    assert not os.path.exists(root)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
