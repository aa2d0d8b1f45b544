"""Reading a mailbox over IMAP (imap-tools): each new message is stored exactly once as an InboundMessage, and
the worker processes it through the outbox ("email.inbound").

Why it cannot lose or double a mail:
- A lease (Mailbox.lease_until, claimed with one conditional UPDATE) lets one poller at a time read a mailbox:
  two beat runs, or beat and an admin's "Poll now", never read the same messages side by side.
- Messages are read in ascending UID order, one at a time, and each is stored together with the mailbox's
  last_uid in one transaction. A connection dropped after k messages leaves exactly k stored and last_uid at
  the k-th; the next poll starts after it. The (mailbox, uidvalidity, uid) unique constraint refuses a second
  copy anyway.
- A message the database will not take as it came (something in it no column accepts) is kept as a bare
  failed row with its raw bytes (processing.inbound_store_safely), and the mark moves on: one poison mail
  never stops a mailbox. Only the database's own trouble (connection lost, deadlock) stops the poll.
- When the folder's UIDVALIDITY changes (the folder was recreated or restored), its UIDs mean other messages:
  the poller starts again from UID 0 and processing's Message-ID check keeps mail it has seen before from
  becoming a second ticket.
The server's \\Seen flag is set after storing, as a courtesy to people who look at the mailbox; nothing
depends on it (messages are fetched with BODY.PEEK[]).

Failures (login refused, host unreachable, certificate not trusted, folder missing, connection lost) are
written to Mailbox.last_error in words an admin can act on, and the next poll is backed off.
"""

from __future__ import annotations

import imaplib
import logging
import re
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import (
    ImapToolsError,
    MailboxFolderSelectError,
    MailboxLoginError,
    MailboxStarttlsError,
    UnexpectedCommandStatusError,
)

from email_channel.models import InboundMessage, Mailbox
from email_channel.processing import inbound_store_safely

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
# A failing mailbox is tried again after twice the previous wait (from its poll interval), at most this long.
MAX_BACKOFF = timedelta(minutes=30)


@dataclass(frozen=True)
class PollResult:
    stored: int = 0  # messages stored now (each queued for processing)
    skipped: int = 0  # messages already stored before, or gone from the server between listing and reading
    error: str = ""  # why the poll stopped, in words ("" when it read everything)
    busy: bool = False  # another poller holds the mailbox's lease: nothing was done


class ImapProblem(Exception):
    """A mailbox could not be read; the message says why in words an admin can act on."""


# --- connecting ---------------------------------------------------------------------------------------------

def _where(mailbox: Mailbox) -> str:
    return f"{mailbox.host}:{mailbox.port}"


def _ssl_context() -> ssl.SSLContext:
    """Certificates verified against the system's CAs, or EMAIL_IMAP_CA_FILE's (a private CA)."""
    return ssl.create_default_context(cafile=getattr(settings, "EMAIL_IMAP_CA_FILE", "") or None)


def _open(mailbox: Mailbox):
    """An imap-tools mailbox connected (not logged in) as the mailbox's security setting says."""
    timeout = getattr(settings, "EMAIL_IMAP_TIMEOUT", 30)
    if mailbox.security == Mailbox.Security.SSL:
        return MailBox(mailbox.host, mailbox.port, timeout=timeout, ssl_context=_ssl_context())
    if mailbox.security == Mailbox.Security.STARTTLS:
        return MailBoxStartTls(mailbox.host, mailbox.port, timeout=timeout, ssl_context=_ssl_context())
    return MailBoxUnencrypted(mailbox.host, mailbox.port, timeout=timeout)


def _detail(exc: BaseException) -> str:
    if isinstance(exc, UnexpectedCommandStatusError):
        data = exc.command_result[1] if len(exc.command_result) > 1 else ""
        parts = data if isinstance(data, list | tuple) else [data]
        words = " ".join(p.decode(errors="replace") if isinstance(p, bytes) else str(p) for p in parts if p)
        return words or str(exc.command_result[0])
    return str(exc) or exc.__class__.__name__


def _words(exc: BaseException, mailbox: Mailbox, *, connected: bool) -> str:
    """What went wrong, for an admin: which host, which account, and the server's or the system's words."""
    where = _where(mailbox)
    if isinstance(exc, MailboxLoginError):
        return f"login refused for {mailbox.username} on {where}: {_detail(exc)}"
    if isinstance(exc, MailboxFolderSelectError):
        return f"cannot open folder {mailbox.folder!r} on {where}: {_detail(exc)}"
    if isinstance(exc, MailboxStarttlsError):
        return f"STARTTLS refused by {where}: {_detail(exc)}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate of {where} not trusted: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS with {where} failed: {exc.reason or exc}"
    if isinstance(exc, ValueError) and mailbox.security == Mailbox.Security.STARTTLS:
        return f"STARTTLS on {where}: {exc} (choose SSL/TLS for port 993)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"{'connection to' if connected else 'cannot reach'} {where}: timed out"
    if isinstance(exc, imaplib.IMAP4.abort) or (connected and isinstance(exc, OSError)):
        return f"connection to {where} lost: {_detail(exc)}"
    if isinstance(exc, OSError):
        return f"cannot reach {where}: {exc.strerror or exc}"
    return f"IMAP error from {where}: {_detail(exc)}"


PROBLEMS = (ImapToolsError, imaplib.IMAP4.error, OSError, ValueError, EOFError)


def _session(mailbox: Mailbox):
    """Connect, log in and select the folder; raises ImapProblem with readable words."""
    connected = False
    try:
        box = _open(mailbox)
        connected = True
        box.login(mailbox.username, mailbox.password, initial_folder=None)
        box.folder.set(mailbox.folder)
        return box
    except PROBLEMS as exc:
        raise ImapProblem(_words(exc, mailbox, connected=connected)) from exc


def _close(box) -> None:
    try:
        box.logout()
    except Exception:  # noqa: BLE001 - the connection may already be gone; nothing to do about it
        try:
            box.client.shutdown()
        except Exception:  # noqa: BLE001
            pass


def _uidvalidity(box) -> int:
    """The selected folder's UIDVALIDITY (from SELECT's answer, else STATUS)."""
    _typ, data = box.client.response("UIDVALIDITY")
    if data and data[0]:
        return int(data[0])
    return int(box.folder.status(box.folder.get(), ["UIDVALIDITY"])["UIDVALIDITY"])


def _uids_after(box, last_uid: int) -> list[int]:
    """UIDs above last_uid, ascending. "UID n:*" always includes the highest message, even below n."""
    found = box.uids(f"UID {last_uid + 1}:*", charset=None)
    return sorted(uid for uid in (int(u) for u in found) if uid > last_uid)


def _fetch_raw(box, uid: int) -> bytes | None:
    """The message's bytes as the server keeps them, without setting \\Seen; None when it is gone."""
    typ, data = box.client.uid("FETCH", str(uid), "(BODY.PEEK[])")
    if typ != "OK":
        raise imaplib.IMAP4.error(f"FETCH {uid}: {data!r}")
    for item in data or ():
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None


def _fetch_size(box, uid: int) -> int | None:
    """The message's size as the server counts it (RFC822.SIZE), without reading it; None when it is gone."""
    typ, data = box.client.uid("FETCH", str(uid), "(RFC822.SIZE)")
    if typ != "OK":
        raise imaplib.IMAP4.error(f"FETCH {uid} RFC822.SIZE: {data!r}")
    for item in data or ():
        line = item[0] if isinstance(item, tuple) else item
        found = re.search(rb"RFC822\.SIZE (\d+)", line or b"")
        if found:
            return int(found.group(1))
    return None


def _fetch_for_storing(box, uid: int) -> tuple[bytes | None, int | None]:
    """What to store of a message: all its bytes, or -- when it is larger than EMAIL_INBOUND_MAX_BYTES -- only its
    header, with its real size (processing then ignores it as too large). A 500 MB mail never passes through a
    worker's memory or the database."""
    size = _fetch_size(box, uid)
    if size is not None and size > settings.EMAIL_INBOUND_MAX_BYTES:
        typ, data = box.client.uid("FETCH", str(uid), "(BODY.PEEK[HEADER])")
        if typ != "OK":
            raise imaplib.IMAP4.error(f"FETCH {uid} header: {data!r}")
        header = next((item[1] for item in data or () if isinstance(item, tuple) and len(item) == 2
                       and isinstance(item[1], bytes)), None)
        return header, size
    return _fetch_raw(box, uid), None


def _mark_seen(box, uid: int) -> None:
    """Best effort: a person looking at the mailbox sees what was taken in. (Not imap-tools' flag(), which
    also expunges the folder.)"""
    try:
        box.client.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Seen)")
    except (imaplib.IMAP4.error, OSError):
        log.info("could not flag UID %s as seen", uid)


# --- the lease ----------------------------------------------------------------------------------------------

def _claim(mailbox_id: int) -> datetime | None:
    """Take the mailbox's lease for LEASE; None when another poller holds it (or it is gone or inactive). The
    lease's end is the holder's token: only its holder renews or releases it."""
    now = timezone.now()
    until = now + LEASE
    claimed = (Mailbox.objects.filter(pk=mailbox_id, active=True)
               .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
               .update(lease_until=until))
    return until if claimed else None


def _renew(mailbox_id: int, lease: datetime) -> datetime | None:
    """Extend our lease (a long poll); None when it is no longer ours (it expired and someone took it)."""
    until = timezone.now() + LEASE
    if Mailbox.objects.filter(pk=mailbox_id, lease_until=lease).update(lease_until=until):
        return until
    return None


def _finish(mailbox_id: int, lease, *, error: str) -> None:
    """Release the lease and write the poll's outcome: success -> next poll in poll_seconds and no error;
    failure -> the error, and a wait that doubles with each failure in a row (from poll_seconds, at most
    MAX_BACKOFF)."""
    now = timezone.now()
    mailbox = Mailbox.objects.filter(pk=mailbox_id).first()
    if mailbox is None:
        return
    every = timedelta(seconds=max(10, mailbox.poll_seconds))
    fields = {"lease_until": None}
    if error:
        wait = every * 2
        if mailbox.last_error and mailbox.last_error_at:
            wait = max(wait, (now - mailbox.last_error_at) * 2)
        fields |= {"last_error": error, "last_error_at": now, "next_poll_at": now + min(wait, MAX_BACKOFF)}
    else:
        fields |= {"last_error": "", "last_polled_at": now, "next_poll_at": now + every}
    Mailbox.objects.filter(pk=mailbox_id, lease_until=lease).update(**fields)


# --- services -----------------------------------------------------------------------------------------------

def mailbox_poll(*, mailbox_id: int) -> PollResult:
    """Store every message of the mailbox's folder above its last UID (see the module docstring). One poller
    at a time per mailbox; returns PollResult(busy=True) at once when another one is at it."""
    active = Mailbox.objects.filter(pk=mailbox_id).values_list("active", flat=True).first()
    if not active:
        return PollResult(error="the mailbox is not active (or no longer exists): nothing was read")
    lease = _claim(mailbox_id)
    if lease is None:
        return PollResult(busy=True)
    stored = skipped = 0
    error = ""
    try:
        mailbox = Mailbox.objects.get(pk=mailbox_id)
        box = _session(mailbox)
        try:
            uidvalidity = _uidvalidity(box)
            if mailbox.uidvalidity != uidvalidity:
                if mailbox.uidvalidity is not None:
                    log.warning("mailbox %s: UIDVALIDITY of %r changed from %s to %s; reading it again from the "
                                "start", mailbox.name, mailbox.folder, mailbox.uidvalidity, uidvalidity)
                Mailbox.objects.filter(pk=mailbox_id, lease_until=lease).update(uidvalidity=uidvalidity,
                                                                                 last_uid=0)
                mailbox.uidvalidity, mailbox.last_uid = uidvalidity, 0
            renewed_at = timezone.now()
            for uid in _uids_after(box, mailbox.last_uid):
                if timezone.now() - renewed_at > LEASE / 5:
                    lease = _renew(mailbox_id, lease)
                    renewed_at = timezone.now()
                    if lease is None:
                        error = "the poll took longer than its lease; another poll took over"
                        return PollResult(stored=stored, skipped=skipped, error=error)
                raw, size = _fetch_for_storing(box, uid)
                with transaction.atomic():
                    message = None
                    if raw is not None:
                        # A mail the database refuses is kept as a failed row: the mark moves past it anyway.
                        message = inbound_store_safely(mailbox=mailbox, raw=raw, source=InboundMessage.Source.IMAP,
                                                       uidvalidity=uidvalidity, uid=uid, size=size)
                    Mailbox.objects.filter(pk=mailbox_id, uidvalidity=uidvalidity, last_uid__lt=uid).update(
                        last_uid=uid)
                if message is None:
                    skipped += 1
                else:
                    stored += 1
                    _mark_seen(box, uid)
        except PROBLEMS as exc:
            error = _words(exc, mailbox, connected=True)
        finally:
            _close(box)
    except ImapProblem as exc:
        error = str(exc)
    except Exception as exc:
        error = f"poll failed: {exc.__class__.__name__}: {exc}"
        raise
    finally:
        if lease is not None:
            _finish(mailbox_id, lease, error=error)
    if error:
        log.warning("mailbox %s: %s", mailbox_id, error)
    return PollResult(stored=stored, skipped=skipped, error=error)


def mailbox_test(*, mailbox: Mailbox) -> str:
    """Connect, log in and open the folder, read nothing; say how many messages it holds (admin's "Test
    connection", which may be run on a mailbox not saved as active yet). Raises ImapProblem with the reason."""
    box = _session(mailbox)
    try:
        status = box.folder.status(mailbox.folder, ["MESSAGES", "UIDVALIDITY"])
    except PROBLEMS as exc:
        raise ImapProblem(_words(exc, mailbox, connected=True)) from exc
    finally:
        _close(box)
    count = status.get("MESSAGES", 0)
    return (f"Connected to {_where(mailbox)} as {mailbox.username}: folder {mailbox.folder!r} holds "
            f"{count} message{'' if count == 1 else 's'}.")


def mailboxes_due(*, now=None) -> list[int]:
    """Ids of the active mailboxes whose next poll is due (index on next_poll_at), each pushed LEASE ahead: beat
    runs every 30 s and must not queue a mailbox again while its poll waits in the queue. The poll sets the real
    next time when it finishes; a poll task that got lost makes the mailbox due again after LEASE."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(Mailbox.objects.select_for_update(skip_locked=True)
                   .filter(active=True, next_poll_at__lte=now)
                   .order_by("next_poll_at").values_list("id", flat=True))
        Mailbox.objects.filter(id__in=due).update(next_poll_at=now + LEASE)
    return due
