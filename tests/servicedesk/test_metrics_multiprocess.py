"""/metrics under several gunicorn processes (prometheus_client's multiprocess mode, servicedesk.prometheus_gunicorn):
whichever process answers a scrape, it reports the requests every process served."""

import http.client
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.peers import free_port
from tests.workers import wait_for

ROOT = Path(__file__).resolve().parents[2]
GET_TOTAL = re.compile(r'^django_http_requests_total_by_method_total\{method="GET"\} (\S+)$', re.M)

pytestmark = pytest.mark.django_db


def get(port: int, path: str) -> tuple[int, str]:
    """One GET, redirects not followed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def answers(port: int) -> bool:
    try:
        return get(port, "/favicon.ico")[0] == 301
    except OSError:
        return False


def test_every_process_counts_in_every_scrape(tmp_path, settings):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left over by a previous run")  # on_starting clears it
    db = connection.settings_dict
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SERVICEDESK_VAR_DIR": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    (tmp_path / "staticfiles").mkdir()
    log = open(tmp_path / "gunicorn.log", "w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "servicedesk.wsgi", "-c", "python:servicedesk.prometheus_gunicorn",
         "--workers", "3", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: answers(port), timeout=60), log.seek(0) or log.read()[-3000:]
        for _ in range(60):
            assert get(port, "/favicon.ico")[0] == 301
        assert wait_for(lambda: len(list(metrics_dir.glob("counter_*.db"))) >= 2, timeout=20)
        pids = {int(p.stem.rsplit("_", 1)[1]) for p in metrics_dir.glob("counter_*.db")}
        assert 1 not in pids and len(pids) >= 2, pids  # the stale file is gone; several processes write

        totals = []
        for _ in range(6):
            status, text = get(port, "/metrics")
            assert status == 200
            [total] = GET_TOTAL.findall(text)
            totals.append(float(total))
            assert text.count("# TYPE servicedesk_outbox_pending gauge") == 1  # our figures once, not per process
            assert get(port, "/favicon.ico")[0] == 301  # one more request, whichever process takes it
        # 61 requests before the first scrape (the readiness probe too), whichever process answered; each
        # request between two scrapes counts in the next one (the scrapes themselves are answered ahead of the
        # per-method counters: servicedesk.metrics.MetricsMiddleware).
        assert totals[0] >= 61
        assert totals == sorted(totals) and totals[-1] - totals[0] == 5, totals
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_on_starting_removes_only_the_sample_files_at_the_top_of_the_directory(tmp_path, monkeypatch):
    """A PROMETHEUS_MULTIPROC_DIR set to a directory holding other things loses only prometheus_client's
    *.db files, never its subdirectories or other files."""
    from servicedesk.prometheus_gunicorn import on_starting

    (tmp_path / "counter_12.db").write_bytes(b"old")
    (tmp_path / "gauge_livesum_12.db").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "counter_9.db").write_bytes(b"not ours to delete")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    on_starting(None)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "keep", "keep/counter_9.db", "notes.txt"]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "new"))
    on_starting(None)
    assert (tmp_path / "new").is_dir()  # created when missing
