"""Transaction-scoped named locks (PostgreSQL advisory locks), for work that rows alone cannot serialise: a
key being claimed, a detector run, the correlation of one service's alerts.

    advisory_xact_lock("problems.candidates_detect")            # wait for it
    if not advisory_xact_lock(f"idem:{owner}\\0{key}", wait=False): ...  # someone else holds it

The lock is released when the transaction ends. A name becomes the lock's 64-bit number through SHA-256, so
distinct names practically never share a lock. On SQLite (the local run) there is one writer at a time anyway:
the lock is granted at once.
"""

import hashlib

from django.db import connection


def lock_number(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def advisory_xact_lock(name: str, *, wait: bool = True) -> bool:
    """Take the lock `name` until the current transaction ends. With `wait=False`, False when another
    transaction holds it (nothing is waited for)."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_number(name)])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_number(name)])
        return cursor.fetchone()[0]
