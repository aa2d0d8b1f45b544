"""The portal's catalog search (requests_app.selectors.catalog_search): on PostgreSQL a trigram GIN index of
an item's name and description, so ILIKE '%word%' is an index scan whatever the catalog's size. pg_trgm is a
trusted extension (PostgreSQL 13+): the database owner may create it. SQLite (the local run) does nothing."""

from django.db import migrations

INDEX = "catalog_item_search_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON requests_app_catalogitem "
            "USING gin ((name || ' ' || description) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("requests_app", "0005_workspace")]
    operations = [migrations.RunPython(create, drop)]
