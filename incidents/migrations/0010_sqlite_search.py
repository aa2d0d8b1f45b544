"""Full-text search for the local SQLite run: an FTS5 table holding each incident's title, description and
comments/notes, with the Porter stemmer (PostgreSQL keeps its tsvector column and GIN index). Does nothing
on PostgreSQL."""

from django.db import migrations

TABLE = "incidents_incident_fts"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    schema_editor.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
        "title, description, comments, tokenize = 'porter unicode61 remove_diacritics 2')"
    )
    # Incidents written before this migration: index them now (incidents.search keeps it fresh after).
    schema_editor.execute(
        f"""
        INSERT INTO {TABLE} (rowid, title, description, comments)
        SELECT i.id, coalesce(i.title, ''), coalesce(i.description, ''), coalesce((
            SELECT group_concat(t.body, ' ') FROM servicedesk_timelineentry t
            WHERE t.object_id = i.id AND t.kind IN ('comment', 'note') AND t.content_type_id = (
                SELECT id FROM django_content_type WHERE app_label = 'incidents' AND model = 'incident')
        ), '')
        FROM incidents_incident i
        """
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(f"DROP TABLE IF EXISTS {TABLE}")


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0009_protect_configuration"),
        ("servicedesk", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create, drop)]
