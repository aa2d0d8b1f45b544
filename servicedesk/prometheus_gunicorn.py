"""gunicorn hooks for prometheus_client's multiprocess mode (servicedesk.metrics, docs/observability.md).

With several gunicorn worker processes, each keeps django-prometheus's counters and histograms in memory, and a
scrape would see only the process that answered it. With PROMETHEUS_MULTIPROC_DIR set (an empty directory,
writable, on a tmpfs for speed), every process writes its samples to files there and /metrics sums them all.

    PROMETHEUS_MULTIPROC_DIR=/run/servicedesk-metrics gunicorn -c python:servicedesk.prometheus_gunicorn \\
        servicedesk.wsgi

or, from a gunicorn config file of your own: `from servicedesk.prometheus_gunicorn import on_starting, child_exit`.
"""

import os
from pathlib import Path


def on_starting(server):
    """Start without the sample files of a previous run (they would add its counts to this one's): the *.db
    files prometheus_client writes at the top of the directory, nothing else (a directory pointed at by mistake
    keeps its other contents)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.glob("*.db"):
        if entry.is_file() and not entry.is_symlink():
            entry.unlink()


def child_exit(server, worker):
    """A worker process that exits leaves its counters (they still count) but not its live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
