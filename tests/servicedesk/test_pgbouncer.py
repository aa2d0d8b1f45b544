"""Django through PgBouncer in transaction mode (DATABASE_POOLER=pgbouncer): Debian's real pgbouncer started by the
test in front of the test database, with fewer server connections than clients so transactions share them.
Concurrent transactions serialised by advisory locks, a streamed queryset, and a real Celery worker processing
outbox messages all go through it. (The several-gunicorn-processes test, test_web_processes.py, runs through it
too.)"""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection, transaction

from monitoring.ingest import events_store
from monitoring.models import Alert, Event
from monitoring.sources import event_source_create
from servicedesk.models import NumberCounter, OutboxMessage
from tests.peers import PgBouncer
from tests.workers import celery_worker, wait_for

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def bouncer():
    with PgBouncer(users=[connection.settings_dict["USER"] or "postgres"],
                   db_host=connection.settings_dict["HOST"] or "127.0.0.1",
                   db_port=int(connection.settings_dict["PORT"] or 5432), pool_size=3) as running:
        yield running


def bouncer_env(bouncer, **extra) -> dict:
    db = connection.settings_dict
    return {**os.environ, "DATABASE_URL": bouncer.url(db["USER"] or "postgres", db["NAME"]),
            "DATABASE_POOLER": "pgbouncer", **extra}


def run_work(env: dict, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "tests.scaling_work", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def settings_in_a_process(env: dict) -> subprocess.CompletedProcess:
    code = ("import django, json; django.setup(); from django.conf import settings; "
            "print(json.dumps({a: d.get('DISABLE_SERVER_SIDE_CURSORS', False) for a, d in settings.DATABASES.items()}))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**env, "DJANGO_SETTINGS_MODULE": "servicedesk.settings"})


def test_the_pgbouncer_setting_turns_server_side_cursors_off_for_every_database():
    env = {**os.environ, "DATABASE_POOLER": "pgbouncer",
           "DATABASE_REPLICA_URL": "postgres://reader@127.0.0.1:5432/whatever"}
    result = settings_in_a_process(env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"default": True, "replica": True}
    plain = settings_in_a_process({k: v for k, v in os.environ.items() if k != "DATABASE_POOLER"})
    assert json.loads(plain.stdout) == {"default": False}


def test_an_unknown_pooler_is_refused_naming_the_setting():
    result = settings_in_a_process({**os.environ, "DATABASE_POOLER": "pgpool"})
    assert result.returncode != 0
    assert "DATABASE_POOLER='pgpool': use pgbouncer, or leave it empty" in result.stderr


def test_advisory_xact_locks_serialise_concurrent_transactions_through_pgbouncer(bouncer):
    NumberCounter.objects.create(prefix="PGB", value=0)
    NumberCounter.objects.create(prefix="RACE", value=0)
    env = bouncer_env(bouncer)
    locked = run_work(env, "locks", "PGB", "8", "15")
    assert locked["errors"] == []
    assert locked["value"] == 8 * 15  # no increment lost: the lock held across pooled server connections
    # The control: the same work without the lock loses increments, so the figure above means something.
    unlocked = run_work(env, "locks", "RACE", "8", "15", "nolock")
    assert unlocked["errors"] == []
    assert unlocked["value"] < 8 * 15
    assert "login" in bouncer.log()  # the connections did go through pgbouncer


def test_a_streamed_queryset_reads_every_row_through_pgbouncer_while_others_share_the_pool(bouncer):
    OutboxMessage.objects.bulk_create(
        OutboxMessage(handler="tests.nothing", payload={}, next_attempt_at=datetime.now(UTC), state="done")
        for _ in range(300))
    result = run_work(bouncer_env(bouncer), "iterate", "6")
    assert result == {"ids": 300, "errors": [], "server_side_cursors": False}


@pytest.mark.worker
def test_a_real_worker_processes_outbox_messages_through_pgbouncer(bouncer, smtp, tmp_path):
    source, _ = event_source_create(name="through-pgbouncer", kind="generic")
    base = datetime.now(UTC) - timedelta(minutes=5)
    db = connection.settings_dict
    with celery_worker(broker_url=os.environ["CELERY_BROKER_URL"], smtp_port=smtp.port, tmp_path=tmp_path,
                       extra_env={"DATABASE_URL": bouncer.url(db["USER"] or "postgres", db["NAME"]),
                                  "DATABASE_POOLER": "pgbouncer"},
                       args=["--pool", "threads", "--concurrency", "4"]):
        for p in range(10):
            with transaction.atomic():
                events_store([{
                    "source_id": source.id, "received_at": base, "external_id": f"e-{p}-{n}", "status": "firing",
                    "severity": "warning", "summary": f"Queue backlog on worker-{n}", "description": "",
                    "service_name": "", "ci_name": "", "labels": {"instance": f"worker-{n}"},
                    "occurred_at": base + timedelta(seconds=p, milliseconds=n), "starts_at": None,
                    "fingerprint": f"fp-{n}", "group_key": "", "dedup_key": f"fp-{p}-{n}", "raw": {},
                } for n in range(20)])
        assert wait_for(lambda: not Event.objects.filter(source=source, processed_at__isnull=True).exists(),
                        timeout=90), (tmp_path / "worker.log").read_text()[-3000:]
    assert Event.objects.filter(source=source).count() == 200
    assert Alert.objects.filter(source=source).count() == 20  # 20 fingerprints, each seen 10 times
    assert not OutboxMessage.objects.filter(handler="monitoring.process").exclude(state="done").exists()
    assert "login" in bouncer.log()
