"""PRB numbers (their sequence) and full-text search of known errors: the stored tsvector and, on PostgreSQL, a GIN index on it (problems.search
keeps the column fresh); on the local SQLite run an FTS5 table of title, cause (root cause and workaround) and
description with the Porter stemmer instead. Each half does nothing on the other database."""

import django.contrib.postgres.search
from django.db import migrations

from servicedesk.numbering import number_sequence_migration

numbers_forward, numbers_backward = number_sequence_migration("PRB")

FTS_TABLE = "problems_problem_fts"


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS problem_search_gin ON problems_problem USING gin (search_vector)"
        )
    elif vendor == "sqlite":
        schema_editor.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
            "title, cause, description, tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        schema_editor.execute(
            f"INSERT INTO {FTS_TABLE} (rowid, title, cause, description) "
            "SELECT id, title, root_cause || ' ' || workaround, description FROM problems_problem"
        )


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS problem_search_gin")
    elif vendor == "sqlite":
        schema_editor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")


class Migration(migrations.Migration):
    dependencies = [("problems", "0001_initial"), ("servicedesk", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="problem",
            name="search_vector",
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        migrations.RunPython(create, drop),
        migrations.RunPython(numbers_forward, numbers_backward),
    ]
