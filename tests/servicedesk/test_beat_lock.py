"""One beat schedules, however many are started (servicedesk.beat): the lock itself, then two real
`celery -A servicedesk beat` processes, the first killed with SIGKILL, the second taking over."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from servicedesk.beat import FileLock, LockedDatabaseScheduler, RedisLock
from servicedesk.celery import app as celery_app
from tests.peers import stop_process
from tests.workers import wait_for

ROOT = Path(__file__).resolve().parents[2]
SENT = "Sending due task worker-heartbeat"


def test_the_redis_lock_has_one_holder_which_alone_renews_it_and_another_takes_it_once_it_expires():
    key = f"test:beat-lock:{uuid.uuid4().hex}"
    first, second = RedisLock(settings.CELERY_BROKER_URL, key, 3), RedisLock(settings.CELERY_BROKER_URL, key, 3)
    first.ttl_ms = second.ttl_ms = 300  # expire quickly for the test
    try:
        assert first.acquire_or_renew(held=False)
        assert not second.acquire_or_renew(held=False)
        assert first.acquire_or_renew(held=True)  # renewed
        assert second.holder() == first.token
        time.sleep(0.5)  # first stopped renewing: expired
        assert second.acquire_or_renew(held=False)
        assert not first.acquire_or_renew(held=True)  # its renewal fails: it is no longer the holder
        first.release()  # releasing someone else's lock does nothing
        assert second.holder() == second.token
        second.release()
        assert second.holder() == "nobody"
    finally:
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(key)


def test_a_leader_that_stepped_down_on_a_redis_error_takes_its_own_lock_back_at_once():
    """After a failed renewal the scheduler calls with held=False; its own key, still in Redis with its token,
    must not keep it waiting for its own TTL (with no beat scheduling meanwhile)."""
    key = f"test:beat-lock:{uuid.uuid4().hex}"
    leader, standby = RedisLock(settings.CELERY_BROKER_URL, key, 60), RedisLock(settings.CELERY_BROKER_URL, key, 60)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        assert leader.acquire_or_renew(held=False)
        client.pexpire(key, 5000)  # part of the TTL gone
        assert leader.acquire_or_renew(held=False)  # stepped down, comes back: its own key, renewed
        assert client.pttl(key) > 50_000
        assert not standby.acquire_or_renew(held=False) and not standby.acquire_or_renew(held=True)
        assert standby.holder() == leader.token
    finally:
        client.delete(key)


def test_the_file_lock_of_the_local_run_has_one_holder_and_is_free_once_released(tmp_path):
    first, second = FileLock(tmp_path / "celerybeat.lock"), FileLock(tmp_path / "celerybeat.lock")
    assert first.acquire_or_renew(held=False)
    assert not second.acquire_or_renew(held=False)
    assert first.holder().endswith(f":{os.getpid()}")
    first.release()
    assert second.acquire_or_renew(held=False)
    second.release()


def test_settings_name_the_locked_scheduler():
    assert celery_app.conf.beat_scheduler == "servicedesk.beat:LockedDatabaseScheduler"
    assert LockedDatabaseScheduler.__mro__[1].__name__ == "DatabaseScheduler"


def _beat(name: str, tmp_path: Path, key: str):
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "BEAT_LOCK_KEY": key,
        "BEAT_LOCK_TTL_SECONDS": "3",
        "WORKER_HEARTBEAT_SECONDS": "1",
        "SERVICEDESK_VAR_DIR": str(tmp_path),
    }
    log = tmp_path / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "servicedesk", "beat", "--loglevel", "info",
         "--pidfile", str(tmp_path / f"{name}.pid"), "--schedule", str(tmp_path / f"{name}.schedule")],
        cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )
    return proc, log


def _stop(proc) -> None:
    stop_process(proc, timeout=20)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_beats_schedule_once_and_the_standby_takes_over_when_the_first_is_killed(tmp_path):
    key = f"test:beat-lock:{uuid.uuid4().hex}"
    store = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    first, first_log = _beat("first", tmp_path, key)
    second = None
    try:
        assert wait_for(lambda: SENT in first_log.read_text(), timeout=60), first_log.read_text()[-3000:]
        assert "holding the beat lock" in first_log.read_text()
        assert store.get(key).decode().split(":")[1] == str(first.pid)

        second, second_log = _beat("second", tmp_path, key)
        assert wait_for(lambda: "standby, the beat lock" in second_log.read_text(), timeout=60), \
            second_log.read_text()[-3000:]
        sent_before = first_log.read_text().count(SENT)
        time.sleep(4)  # more than the lock's TTL: the standby keeps waiting while the first renews
        assert first_log.read_text().count(SENT) > sent_before, "the first beat stopped scheduling"
        assert SENT not in second_log.read_text(), "both beats scheduled"

        os.kill(first.pid, signal.SIGKILL)  # dies without releasing the lock: it must expire
        first.wait(timeout=10)
        killed = time.monotonic()
        assert wait_for(lambda: SENT in second_log.read_text(), timeout=30), second_log.read_text()[-3000:]
        took = time.monotonic() - killed
        print(f"the standby scheduled {took:.1f}s after the first beat was killed (lock TTL 3s)")
        assert "holding the beat lock" in second_log.read_text()
        assert store.get(key).decode().split(":")[1] == str(second.pid)
        assert took < 15

        _stop(second)  # a clean stop releases the lock at once
        assert "released the beat lock" in second_log.read_text()
        assert store.get(key) is None
    finally:
        for proc in (first, second):
            if proc is not None:
                _stop(proc)
        store.delete(key)
        celery_app.control.purge()
