"""Real background processes for tests: a Celery worker (`celery -A servicedesk worker`) and a private
redis-server that a test can stop and start to take the broker away."""

import os
import shutil
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from servicedesk.celery import app as celery_app
from servicedesk.models import Heartbeat
from tests.peers import free_port, stop_process, wait_for

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def celery_worker(*, broker_url: str, smtp_port: int, tmp_path: Path, extra_env: dict | None = None,
                  args: list[str] | tuple = (), log_name: str = "worker.log"):
    """Start `celery -A servicedesk worker` against the test database and `broker_url`; stop it after. `args`
    are added to the command line (e.g. ["-Q", "sla"] for a worker of one queue)."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": broker_url,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "SERVICEDESK_VAR_DIR": str(tmp_path),
        "MEDIA_ROOT": str(tmp_path / "media"),
        **(extra_env or {}),
    }
    Heartbeat.objects.filter(name="worker").delete()
    log = open(tmp_path / log_name, "w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "servicedesk", "worker", "--pool", "solo", "--loglevel", "info",
         "--without-gossip", "--without-mingle", "--hostname", f"test-worker-{free_port()}@%h", *args],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        # The worker stamps its heartbeat when it is ready (celery.signals.worker_ready).
        if not wait_for(lambda: Heartbeat.objects.filter(name="worker").exists(), timeout=60):
            log.seek(0)
            pytest.fail(f"the worker did not come up within 60s:\n{log.read()[-3000:]}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class RedisServer:
    """A private redis-server on a free port, without persistence, that the test starts and stops."""

    def __init__(self):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            pytest.fail("redis-server is not installed: the broker-outage tests start their own")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        if not wait_for(self._answers, timeout=15, interval=0.05):
            self.stop()
            pytest.fail(f"redis-server did not start on port {self.port}")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
            self.proc = None
        assert not self._answers(), "redis-server still answers after stop"

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def _reset_celery_pools():
    # What Celery itself does after a fork: the next publish opens a connection to the configured broker.
    celery_app._pool = None
    try:
        celery_app.__dict__["amqp"]._producer_pool = None
    except KeyError:
        pass


@contextmanager
def celery_broker(url: str):
    """Point this process's Celery app (every publish, including the web request's) at `url`."""
    previous = celery_app.conf.get("broker_url"), os.environ.get("CELERY_BROKER_URL")
    celery_app.conf.broker_url = url
    os.environ["CELERY_BROKER_URL"] = url  # Celery's conf.broker_url reads the environment first
    _reset_celery_pools()
    try:
        assert celery_app.connection_for_write().as_uri().endswith(url.rsplit("@", 1)[-1].split("//", 1)[-1])
        yield celery_app
    finally:
        celery_app.conf.broker_url = previous[0]
        if previous[1] is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = previous[1]
        _reset_celery_pools()


@contextmanager
def gunicorn_server(*, tmp_path: Path, workers: int = 2, args: list[str] | tuple = (), env: dict | None = None):
    """Start `gunicorn servicedesk.wsgi` on a free 127.0.0.1 port against the test database (or `env`'s
    DATABASE_URL) and broker; yield (base URL, access log path). Each access-log line starts with the PID of
    the worker process that served the request: "<pid> <method> <path> <status>"."""
    db = connection.settings_dict
    port = free_port()
    log = tmp_path / "gunicorn-access.log"
    errors = open(tmp_path / "gunicorn.log", "w+")  # noqa: SIM115 - closed below
    full_env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "SERVICEDESK_VAR_DIR": str(tmp_path),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "DEBUG": "0",
        **(env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "servicedesk.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--access-logfile", str(log),
         "--access-logformat", "%(p)s %(m)s %(U)s %(s)s", *args],
        cwd=ROOT, env=full_env, stdout=errors, stderr=subprocess.STDOUT,
    )

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    try:
        if not wait_for(answers, timeout=60, interval=0.1):
            errors.seek(0)
            pytest.fail(f"gunicorn did not come up within 60s:\n{errors.read()[-3000:]}")
        yield f"http://127.0.0.1:{port}", log
    finally:
        stop_process(proc, timeout=30)
        errors.close()


def access_log_pids(log: Path, method: str, path_prefix: str, count: int = 0) -> list[str]:
    """The PIDs that served `method` requests to paths starting with `path_prefix`, in the order served.

    Gunicorn writes a request's access-log line after its response has gone, so a test that has just read the
    last answer may be ahead of the line: with `count`, wait (up to 10 s) until that many lines are there."""

    def read() -> list[str]:
        pids = []
        for line in log.read_text().splitlines():
            pid, m, path, _status = line.split(" ", 3)
            if m == method and path.startswith(path_prefix):
                pids.append(pid)
        return pids

    wait_for(lambda: len(read()) >= count, timeout=10, interval=0.05)
    return read()
