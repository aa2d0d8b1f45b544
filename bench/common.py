"""Shared set-up for benchmarks: a dedicated PostgreSQL database (servicedesk_bench), migrated, Django ready.

Benchmarks print figures; they are not pass/fail tests. Run them with `python3 dev.py bench`.
"""

import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _bench_database(url, name: str, *, fresh: bool) -> None:
    import psycopg2

    admin = psycopg2.connect(host=url.hostname, port=url.port or 5432, user=url.username,
                             password=url.password, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        if fresh:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def setup_bench_database(name: str = "servicedesk_bench") -> None:
    """A database of its own for a bench, kept between runs (generating a million rows takes a while) and
    migrated; when its tables no longer match this checkout's migrations (another branch's bench left it),
    it starts afresh."""
    url = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/servicedesk"))
    _bench_database(url, name, fresh=False)
    os.environ["DATABASE_URL"] = urlunparse(url._replace(path=f"/{name}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicedesk.settings")
    os.environ["DEBUG"] = "0"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import DatabaseError, connections
    from django.db.migrations.exceptions import InconsistentMigrationHistory

    try:
        call_command("migrate", verbosity=0)
    except (DatabaseError, InconsistentMigrationHistory) as error:
        print(f"{name}: its tables do not match this checkout's migrations ({str(error).strip()}); "
              "starting it afresh")
        connections.close_all()
        _bench_database(url, name, fresh=True)
        call_command("migrate", verbosity=0)


def timed(fn, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered):7.2f} ms   p95 {p95:7.2f} ms   (n={len(ordered)})"
