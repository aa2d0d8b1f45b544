"""`manage.py import_email`: a mail server's pipe transport. In-process through call_command, and as the real
process a mail server runs (exit codes read by Postfix: 0, 65 EX_DATAERR, 75 EX_TEMPFAIL)."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from email_channel.models import InboundMessage
from incidents.models import Incident
from tests.email_channel.inbound_helpers import mail, mailbox_make

ROOT = Path(__file__).resolve().parents[2]
State = InboundMessage.State


def _run(*args, stdin=None) -> str:
    out = io.StringIO()
    call_command("import_email", *args, stdout=out, stdin=stdin)
    return out.getvalue().strip()


@pytest.mark.django_db
def test_it_stores_and_processes_a_mail_from_a_file(tmp_path, requester):
    mailbox_make()
    path = tmp_path / "mail.eml"
    path.write_bytes(mail(subject="Scanner offline"))

    line = _run(str(path))

    message = InboundMessage.objects.get()
    assert message.source == InboundMessage.Source.PIPE and message.state == State.PROCESSED
    incident = Incident.objects.get()
    assert line == f"created {incident.number} (mail #{message.id})"


@pytest.mark.django_db
def test_it_reads_stdin_and_names_the_mailbox(requester):
    mailbox_make()
    second = mailbox_make(name="HR", address="hr@desk.example")

    line = _run("--mailbox", "HR", "-", stdin=io.BytesIO(mail()))

    assert InboundMessage.objects.get().mailbox == second
    assert line.startswith("created INC")


@pytest.mark.django_db
def test_it_says_why_a_mail_was_ignored_or_replied(requester):
    mailbox_make()
    _run("-", stdin=io.BytesIO(mail()))
    number = Incident.objects.get().number

    replied = _run("-", stdin=io.BytesIO(mail(subject=f"Re: [{number}]", text="Thanks")))
    ignored = _run("-", stdin=io.BytesIO(mail(headers={"Auto-Submitted": "auto-replied"})))

    assert replied.startswith(f"replied on {number} (mail #")
    assert ignored.startswith("ignored: auto-reply")


@pytest.mark.django_db
def test_a_failed_mail_is_stored_and_exits_zero(requester):
    from email_channel.models import Mailbox

    mailbox_make(creates=Mailbox.Creates.REQUEST)  # no catalog item: cannot raise requests

    line = _run("-", stdin=io.BytesIO(mail()))

    assert line.startswith("failed: InvalidInput: catalog_item")
    assert InboundMessage.objects.get().state == State.FAILED


@pytest.mark.django_db
def test_it_refuses_input_that_is_not_a_mail():
    mailbox_make()

    for junk in (b"", b"just some words without any header\n"):
        with pytest.raises(CommandError) as refused:
            _run("-", stdin=io.BytesIO(junk))
        assert refused.value.returncode == 65
    assert not InboundMessage.objects.exists()


@pytest.mark.django_db
def test_it_needs_a_mailbox_it_can_tell():
    with pytest.raises(CommandError) as none:
        _run("-", stdin=io.BytesIO(mail()))
    mailbox_make()
    mailbox_make(name="HR", address="hr@desk.example")
    with pytest.raises(CommandError) as several:
        _run("-", stdin=io.BytesIO(mail()))
    with pytest.raises(CommandError) as unknown:
        _run("--mailbox", "Nope", "-", stdin=io.BytesIO(mail()))

    # 75, not 78 (EX_CONFIG): Postfix bounces mail on 78; a mailbox set up wrong must keep the mail queued.
    assert none.value.returncode == several.value.returncode == unknown.value.returncode == 75
    assert "--mailbox" in str(several.value)
    assert not InboundMessage.objects.exists()


def _env(database_url: str) -> dict:
    return {**os.environ, "DATABASE_URL": database_url, "DEBUG": "0"}


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_the_real_pipe_exits_zero_and_the_ticket_is_there(requester):
    mailbox_make()

    done = subprocess.run([sys.executable, "manage.py", "import_email"], input=mail(subject="Piped"), cwd=ROOT,
                          env=_env(_database_url()), capture_output=True, timeout=120)

    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().startswith("created INC")
    assert Incident.objects.get().title == "Piped"


@pytest.mark.django_db(transaction=True)
def test_the_real_pipe_exits_65_on_junk_and_75_when_the_database_is_away():
    mailbox_make()
    junk = subprocess.run([sys.executable, "manage.py", "import_email", "-"], input=b"no header here\n", cwd=ROOT,
                          env=_env(_database_url()), capture_output=True, timeout=120)
    from tests.peers import free_port

    # Nothing listens on this port: the database cannot be reached, the mail server must keep the mail.
    away = f"postgres://postgres@127.0.0.1:{free_port()}/nowhere"
    tempfail = subprocess.run([sys.executable, "manage.py", "import_email", "-"], input=mail(), cwd=ROOT,
                              env=_env(away), capture_output=True, timeout=120)

    assert junk.returncode == 65, junk.stderr.decode()[-2000:]
    assert tempfail.returncode == 75, tempfail.stderr.decode()[-2000:]
    assert b"try again later" in tempfail.stderr
    assert not InboundMessage.objects.exists()


def _refuse_in_db(condition: str) -> None:
    """A CHECK constraint standing for "something in this mail the database refuses" (rolled back with the
    test's transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE email_channel_inboundmessage ADD CONSTRAINT test_refuse CHECK ({condition})")


@pytest.mark.django_db
def test_a_mail_the_database_refuses_is_kept_raw_as_failed_and_exits_zero(requester):
    mailbox_make()
    _refuse_in_db("subject NOT LIKE '%poison%'")
    raw = mail(subject="A poison subject")

    line = _run("-", stdin=io.BytesIO(raw))

    message = InboundMessage.objects.get()
    assert message.state == State.FAILED and bytes(message.raw) == raw
    assert line == f"failed: {message.error} (mail #{message.id}; kept, see admin)"
    assert message.error.startswith("not stored as it came: IntegrityError")


@pytest.mark.django_db
def test_a_mail_that_cannot_be_kept_at_all_exits_75(requester):
    mailbox_make()
    _refuse_in_db("position('\\x706f69736f6e'::bytea in raw) = 0")  # "poison" anywhere in the raw bytes

    with pytest.raises(CommandError) as refused:
        _run("-", stdin=io.BytesIO(mail(subject="A poison subject")))

    assert refused.value.returncode == 75 and "try again later" in str(refused.value)
    assert not InboundMessage.objects.exists()


def _documented_wrapper(tmp_path) -> Path:
    """The wrapper script docs/email.md gives for Postfix, as written there, pointed at this checkout."""
    doc = (ROOT / "docs" / "email.md").read_text()
    start = doc.index("    #!/bin/sh\n")
    lines = []
    for line in doc[start:].splitlines():
        if not line.startswith("    "):
            break
        lines.append(line[4:])
    script = "\n".join(lines) + "\n"
    assert "/srv/servicedesk/.venv/bin/python /srv/servicedesk/manage.py import_email" in script
    script = script.replace("/srv/servicedesk/.venv/bin/python", sys.executable).replace(
        "/srv/servicedesk/manage.py", str(ROOT / "manage.py"))
    path = tmp_path / "import-email"
    path.write_text(script)
    path.chmod(0o755)
    return path


@pytest.mark.django_db(transaction=True)
def test_the_documented_postfix_wrapper_keeps_0_and_65_and_turns_a_crash_into_75(tmp_path, requester):
    """S2: a crash before import_email's own handling (here: settings that cannot be imported, exit 1) or a
    wrong option (exit 2) would make Postfix bounce the mail; through the documented wrapper it is 75."""
    mailbox_make()
    wrapper = _documented_wrapper(tmp_path)

    def run(*args, env=None, data=b""):
        return subprocess.run([str(wrapper), *args], input=data, cwd=ROOT, env=env or _env(_database_url()),
                              capture_output=True, timeout=120).returncode

    broken = {**_env(_database_url()), "DJANGO_SETTINGS_MODULE": "no_such_settings_module"}
    assert run("-", data=mail(subject="Wrapped")) == 0
    assert Incident.objects.get().title == "Wrapped"
    assert run("-", data=b"no header here\n") == 65
    assert run("-", env=broken, data=mail()) == 75
    assert run("--no-such-option", "-", data=mail()) == 75
    assert Incident.objects.count() == 1
