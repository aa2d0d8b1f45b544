"""`manage.py create_event_source NAME --kind ... [--rotate]`: the token alone on the last line, and it works."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from monitoring.models import EventSource
from monitoring.sources import event_source_create, event_source_for_token, token_digest
from servicedesk.models import AuditLog

ROOT = Path(__file__).resolve().parents[2]


def run(*args) -> tuple[list[str], str]:
    out, err = StringIO(), StringIO()
    call_command("create_event_source", *args, stdout=out, stderr=err)
    return out.getvalue().splitlines(), err.getvalue()


@pytest.mark.django_db
def test_it_creates_the_source_and_prints_its_token_alone_on_the_last_line():
    lines, _ = run("Prometheus prod", "--kind", "alertmanager")

    token = lines[-1]
    source = EventSource.objects.get(name="Prometheus prod")
    assert source.kind == "alertmanager"
    assert event_source_for_token(token) == source
    assert token.startswith("sdev_") and " " not in token
    assert source.token_hash == token_digest(token)
    assert "Created event source Prometheus prod (alertmanager)" in lines[0]
    assert AuditLog.objects.filter(action="event_source.created", object_id=str(source.id)).count() == 1


@pytest.mark.django_db
def test_a_second_run_without_rotate_changes_nothing_and_names_rotate():
    source, token = event_source_create(name="Prometheus prod", kind="alertmanager")

    with pytest.raises(CommandError, match="exists already.*--rotate"):
        run("Prometheus prod", "--kind", "alertmanager")

    source.refresh_from_db()
    assert source.token_hash == token_digest(token)
    assert event_source_for_token(token) == source


@pytest.mark.django_db
def test_rotate_issues_a_new_token_and_the_old_one_stops_working():
    source, old = event_source_create(name="Prometheus prod", kind="alertmanager")

    lines, err = run("Prometheus prod", "--rotate")

    new = lines[-1]
    assert new != old
    assert event_source_for_token(old) is None
    assert event_source_for_token(new) == source
    assert "previous token no longer works" in lines[0] and err == ""
    assert AuditLog.objects.filter(action="event_source.token_rotated", object_id=str(source.id)).count() == 1


@pytest.mark.django_db
def test_rotate_with_the_same_kind_works_and_with_another_kind_is_refused():
    source, old = event_source_create(name="Prometheus prod", kind="alertmanager")

    with pytest.raises(CommandError, match="--kind: 'Prometheus prod' is of kind alertmanager, not grafana"):
        run("Prometheus prod", "--kind", "grafana", "--rotate")
    assert event_source_for_token(old) == source

    lines, _ = run("Prometheus prod", "--kind", "alertmanager", "--rotate")
    assert event_source_for_token(lines[-1]) == source


@pytest.mark.django_db
def test_rotate_creates_a_missing_source():
    lines, _ = run("Grafana", "--kind", "grafana", "--rotate")

    assert event_source_for_token(lines[-1]) == EventSource.objects.get(name="Grafana", kind="grafana")


@pytest.mark.django_db
def test_rotating_a_disabled_source_warns_on_stderr_and_still_ends_with_the_token():
    source, _ = event_source_create(name="Old", kind="generic", enabled=False)

    lines, err = run("Old", "--rotate")

    assert "is disabled" in err
    assert EventSource.objects.get(id=source.id).token_hash == token_digest(lines[-1])
    assert event_source_for_token(lines[-1]) is None  # disabled: refused until enabled


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "message"), [
    (["X", "--kind", "nagios"], "--kind: unknown kind 'nagios'; give one of generic, alertmanager, grafana"),
    (["X"], "--kind: 'X' does not exist yet"),
    (["  ", "--kind", "generic"], "name: give the source a name"),
])
def test_bad_arguments_are_refused_naming_them_and_nothing_is_created(args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        run(*args)
    assert not EventSource.objects.exists()


def manage(*args, env):
    return subprocess.run([sys.executable, "manage.py", "create_event_source", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.django_db(transaction=True)
def test_the_real_command_prints_a_token_that_authenticates_and_refuses_a_second_run():
    db = connection.settings_dict  # the test database: the subprocess writes where this test reads
    env = {**os.environ,
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"}

    created = manage("Prometheus prod", "--kind", "alertmanager", env=env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.splitlines()[-1]
    assert event_source_for_token(token) == EventSource.objects.get(name="Prometheus prod")

    again = manage("Prometheus prod", "--kind", "alertmanager", env=env)
    assert again.returncode == 1
    assert "--rotate" in again.stderr and again.stdout == ""
    assert event_source_for_token(token) is not None

    rotated = manage("Prometheus prod", "--rotate", env=env)
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.splitlines()[-1]
    assert event_source_for_token(token) is None
    assert event_source_for_token(new) == EventSource.objects.get(name="Prometheus prod")

    unknown = manage("Other", "--kind", "zabbix", env=env)
    assert unknown.returncode == 1 and "--kind" in unknown.stderr
    assert not EventSource.objects.filter(name="Other").exists()
