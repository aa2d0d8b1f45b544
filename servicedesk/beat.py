"""Beat that schedules once, however many are started: django-celery-beat's DatabaseScheduler behind a lock.

    celery -A servicedesk beat        # settings.CELERY_BEAT_SCHEDULER = "servicedesk.beat:LockedDatabaseScheduler"

Each tick, the scheduler takes or renews a lock before it sends anything. The lock lives in Redis
(settings.BEAT_LOCK_URL, by default the broker's Redis) under BEAT_LOCK_KEY with a TTL of BEAT_LOCK_TTL_SECONDS
and a token only its holder knows, so:
- the first beat to start holds it and schedules; it renews it at every tick (every few seconds: ticks are at
  most a third of the TTL apart);
- a second beat finds it taken and waits as a standby, trying again every third of the TTL, sending nothing;
- when the holder stops (its lock is released on a clean stop) or dies (its lock expires after the TTL), the
  standby takes the lock, re-reads the schedule from the database and schedules from then on;
- a holder that could not renew (Redis unreachable, or its lock expired and another beat took it) stops sending
  at once and becomes a standby itself.
Redis is preferred over a PostgreSQL advisory lock: a session-level advisory lock does not survive PgBouncer's
transaction mode. Without Redis (the local run's filesystem broker) the lock is an exclusive file lock (flock)
on var/celerybeat.lock, which does the same on one machine and is freed by the kernel when the holder dies.

Entries that came due while no beat held the lock run once at take-over (interval entries whose last run the
dead beat had not yet saved may run once more early); every periodic task is safe to run twice.
"""

import fcntl
import logging
import os
import secrets
import socket
from pathlib import Path

from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

log = logging.getLogger(__name__)


class RedisLock:
    """A lock with a TTL in Redis that only its holder (by token) renews or releases."""

    _RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
    # Ours (by token): renew it. Free: take it. Another's: no. Whether we thought we held it or not: a leader
    # that stepped down after a Redis error finds its own key still there and takes it back at once, instead
    # of standing by until its own TTL runs out.
    _ACQUIRE = ("local v = redis.call('get', KEYS[1]) "
                "if v == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end "
                "if not v then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end "
                "return 0")

    def __init__(self, url: str, key: str, ttl_seconds: int):
        import redis

        self.client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self.key, self.ttl_ms = key, ttl_seconds * 1000
        self.token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"
        self.where = f"redis key {key!r}"

    def acquire_or_renew(self, held: bool) -> bool:
        return self.client.eval(self._ACQUIRE, 1, self.key, self.token, self.ttl_ms) == 1

    def holder(self) -> str:
        value = self.client.get(self.key)
        return value.decode() if value else "nobody"

    def release(self) -> None:
        self.client.eval(self._RELEASE, 1, self.key, self.token)


class FileLock:
    """An exclusive flock on a file: one holder per machine, freed when the process ends however it ends."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.handle = path, None
        self.where = f"file {path}"

    def acquire_or_renew(self, held: bool) -> bool:
        if self.handle is not None:
            return True
        handle = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{socket.gethostname()}:{os.getpid()}\n")
        handle.flush()
        self.handle = handle
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "nobody"
        except OSError:
            return "nobody"

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()  # closing the file drops the flock
            self.handle = None


def beat_lock():
    if settings.BEAT_LOCK_URL:
        return RedisLock(settings.BEAT_LOCK_URL, settings.BEAT_LOCK_KEY, settings.BEAT_LOCK_TTL_SECONDS)
    return FileLock(Path(settings.VAR_DIR) / "celerybeat.lock")


class LockedDatabaseScheduler(DatabaseScheduler):
    """DatabaseScheduler that sends only while it holds the beat lock (see the module doc)."""

    def __init__(self, *args, **kwargs):
        self.lock = beat_lock()
        self.is_leader = False
        self.standby_interval = max(1.0, settings.BEAT_LOCK_TTL_SECONDS / 3)
        super().__init__(*args, **kwargs)
        # Renew well inside the TTL: the scheduler never sleeps longer than a third of it between ticks.
        self.max_interval = min(self.max_interval, self.standby_interval)

    def _hold_lock(self) -> bool:
        try:
            held = self.lock.acquire_or_renew(self.is_leader)
        except Exception as exc:  # noqa: BLE001 - an unreachable lock store means: do not schedule
            if self.is_leader:
                log.error("beat: cannot renew the beat lock (%s: %s); standing by", exc.__class__.__name__, exc)
            held = False
        if held and not self.is_leader:
            log.warning("beat: holding the beat lock (%s); scheduling", self.lock.where)
            # Start from the schedule as the database has it now (last runs saved by the previous holder).
            self._initial_read = True
            self._heap = None
        elif not held and self.is_leader:
            log.error("beat: lost the beat lock (%s); standing by", self.lock.where)
        elif not held and getattr(self, "_announced_standby", False) is False:
            log.warning("beat: standby, the beat lock (%s) is held by %s", self.lock.where, self._holder())
            self._announced_standby = True
        self.is_leader = held
        return held

    def _holder(self) -> str:
        try:
            return self.lock.holder()
        except Exception:  # noqa: BLE001
            return "unknown"

    def tick(self, *args, **kwargs):
        if not self._hold_lock():
            return self.standby_interval
        self._announced_standby = False
        return min(super().tick(*args, **kwargs), self.standby_interval)

    def close(self):
        try:
            super().close()
        finally:
            if self.is_leader:
                try:
                    self.lock.release()
                    log.warning("beat: released the beat lock (%s)", self.lock.where)
                except Exception:  # noqa: BLE001 - it expires by itself
                    pass
                self.is_leader = False
