"""Create the PostgreSQL database that DATABASE_URL names when it does not exist yet.

CI runs `manage.py check` and `makemigrations --check` against DATABASE_URL before pytest creates its own
test database; on a fresh server that database is missing and Django warns that it cannot check the
migration history. Anything but a PostgreSQL URL is left alone.
"""

import os
import sys
from urllib.parse import unquote, urlparse

import psycopg2
from psycopg2 import sql


def ensure_database(url: str) -> bool:
    """Return True when the database was created, False when it was already there (or not PostgreSQL)."""
    parts = urlparse(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        return False
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise SystemExit(f"DATABASE_URL names no database: {url!r}")
    server = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 5432,
              "user": unquote(parts.username or "postgres"), "dbname": "postgres"}
    if parts.password:
        server["password"] = unquote(parts.password)
    connection = psycopg2.connect(**server)
    connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone():
                return False
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    finally:
        connection.close()


if __name__ == "__main__":
    url = os.environ.get("DATABASE_URL", "")
    created = ensure_database(url)
    name = urlparse(url).path.lstrip("/") or "(none)"
    sys.stderr.write(f"database {name}: {'created' if created else 'present'}\n")
