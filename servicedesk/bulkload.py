"""Loading many rows at once into PostgreSQL (the demo seeder's million tickets).

Inserting a million rows into a table with twenty indexes updates every index row by row; building an index
afterwards sorts once and is several times faster. `indexes_deferred(table)` drops the table's plain indexes
(not those behind a primary key or unique constraint, which the insert needs) and creates them again on
exit, inside the caller's transaction: if the load fails, the rollback brings the indexes back with it.
Only worth it when the load is large next to what the table holds (`worth_deferring`).
"""

from contextlib import contextmanager

from django.db import connection


def padded_number_sql(column: str, width: int = 7) -> str:
    """SQL for a ticket number's digits from an integer `column`: zero-padded to `width`, never cut (lpad alone
    truncates 12345678 to 1234567). Read `column` from a subquery: a nextval() here would run twice."""
    return f"lpad(({column})::text, greatest({width}, length(({column})::text)), '0')"


def worth_deferring(existing: int, adding: int) -> bool:
    """Rebuilding costs O(all rows), maintaining O(added rows x indexes): rebuild only for big loads."""
    return connection.vendor == "postgresql" and adding >= 50_000 and adding >= existing


@contextmanager
def indexes_deferred(table: str, *, enabled: bool = True):
    if not enabled or connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname, pg_get_indexdef(x.indexrelid)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
            WHERE t.relname = %s AND t.relnamespace = to_regnamespace(current_schema())
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
            ORDER BY i.relname
            """,
            [table],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    yield
    with connection.cursor() as cursor:
        # An index cannot be built while the load's deferred foreign-key checks are pending: run them now
        # (they would run at commit anyway), then defer again what is declared deferrable.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        # More sort memory for the builds, for this transaction only.
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            cursor.execute(definition)
