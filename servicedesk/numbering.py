"""Human ticket numbers per type: INC0001001, REQ0001001, PRB0001001.

On PostgreSQL each prefix has its own sequence. `nextval` never blocks another transaction and is not
rolled back, so numbers are unique under any concurrency and may have gaps (a rolled-back creation burns
its number), which is what ITIL tools do. On SQLite (the local run, one writer at a time) a counter row is
bumped with UPDATE ... RETURNING inside the caller's transaction.
"""

import re

from django.db import connection

from servicedesk.models import NumberCounter

DIGITS = 7
START = 1001
_PREFIX = re.compile(r"^[A-Z]{2,6}$")


def _check(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise ValueError(f"ticket number prefix {prefix!r} must be 2-6 capital letters")
    return prefix


def _sequence_name(prefix: str) -> str:
    return f"sd_number_{_check(prefix).lower()}"


def number_format(prefix: str, value: int) -> str:
    return f"{prefix}{value:0{DIGITS}d}"


def number_sequence_ensure(prefix: str, *, using_connection=None) -> None:
    """Create the counter for a prefix; idempotent. Apps call it from a migration."""
    conn = using_connection or connection
    if conn.vendor == "postgresql":
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE SEQUENCE IF NOT EXISTS {_sequence_name(prefix)} START {START}")
    else:
        NumberCounter.objects.using(conn.alias).get_or_create(prefix=_check(prefix), defaults={"value": START - 1})


def number_sequence_migration(prefix: str):
    """A RunPython pair for an app's migration that creates the prefix's counter."""

    def forward(apps, schema_editor):
        conn = schema_editor.connection
        if conn.vendor == "postgresql":
            schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {_sequence_name(prefix)} START {START}")
        else:
            counter = apps.get_model("servicedesk", "NumberCounter")
            counter.objects.using(conn.alias).get_or_create(prefix=prefix, defaults={"value": START - 1})

    def backward(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP SEQUENCE IF EXISTS {_sequence_name(prefix)}")

    return forward, backward


def number_block(prefix: str, count: int) -> list[str]:
    """Reserve `count` consecutive-or-not numbers in one round trip (bulk creation, seeding)."""
    if count <= 0:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT nextval('{_sequence_name(prefix)}') FROM generate_series(1, %s)", [count]
            )
            return [number_format(prefix, row[0]) for row in cursor.fetchall()]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE servicedesk_numbercounter SET value = value + %s WHERE prefix = %s RETURNING value",
            [count, _check(prefix)],
        )
        row = cursor.fetchone()
    if row is None:
        raise LookupError(f"no number counter for {prefix!r}: run migrations")
    last = row[0]
    return [number_format(prefix, v) for v in range(last - count + 1, last + 1)]


def number_next(prefix: str) -> str:
    return number_block(prefix, 1)[0]
