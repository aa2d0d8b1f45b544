"""Work a test runs in a separate Django process (its own settings from the environment, e.g. DATABASE_URL pointing at
PgBouncer and DATABASE_POOLER=pgbouncer): `python -m tests.scaling_work <what> <args>`; prints one JSON line.

    locks <prefix> <threads> <rounds> [nolock]   read-modify-write one NumberCounter row from many threads, each
                                                 increment in a transaction serialised by an advisory xact lock
    iterate <threads>                            stream every OutboxMessage id with .iterator(chunk_size=10)
                                                 while other threads keep the pool's server connections busy
"""

import json
import os
import sys
import threading
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicedesk.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402

from servicedesk.locks import advisory_xact_lock  # noqa: E402
from servicedesk.models import NumberCounter, OutboxMessage  # noqa: E402


def _threads(count: int, target) -> list[str]:
    errors: list[str] = []

    def run(n):
        try:
            target(n)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            errors.append(f"{exc.__class__.__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def locks(prefix: str, threads: int, rounds: int, mode: str = "lock") -> dict:
    def work(n):
        for _ in range(rounds):
            with transaction.atomic():
                if mode == "lock":
                    advisory_xact_lock(f"tests.scaling:{prefix}")
                value = NumberCounter.objects.get(prefix=prefix).value
                time.sleep(0.002)  # widen the window a lost update needs
                NumberCounter.objects.filter(prefix=prefix).update(value=value + 1)

    errors = _threads(threads, work)
    return {"value": NumberCounter.objects.get(prefix=prefix).value, "errors": errors}


def iterate(threads: int) -> dict:
    seen: list[int] = []
    stop = threading.Event()

    def work(n):
        if n == 0:
            try:
                seen.extend(message.id for message in OutboxMessage.objects.order_by("id").iterator(chunk_size=10))
            finally:
                stop.set()
            return
        while not stop.is_set():  # others keep taking the pool's server connections, as real traffic does
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(0.001)")

    errors = _threads(threads, work)
    return {"ids": len(seen), "errors": errors,
            "server_side_cursors": not settings.DATABASES["default"].get("DISABLE_SERVER_SIDE_CURSORS", False)}


if __name__ == "__main__":
    what, args = sys.argv[1], sys.argv[2:]
    if what == "locks":
        result = locks(args[0], int(args[1]), int(args[2]), *(args[3:4]))
    elif what == "iterate":
        result = iterate(int(args[0]))
    else:
        raise SystemExit(f"unknown work {what!r}")
    print(json.dumps(result))
