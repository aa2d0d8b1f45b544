"""Full-text search of articles: on PostgreSQL a GIN index on the stored tsvector (knowledge.search keeps the
column fresh on every save); on the local SQLite run an FTS5 table of title and body with the Porter stemmer
instead. Each half does nothing on the other database."""

from django.db import migrations

FTS_TABLE = "knowledge_article_fts"


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS kb_article_search_gin ON knowledge_article USING gin (search_vector)"
        )
    elif vendor == "sqlite":
        schema_editor.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
            "title, body, tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        schema_editor.execute(f"INSERT INTO {FTS_TABLE} (rowid, title, body) SELECT id, title, body FROM knowledge_article")


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS kb_article_search_gin")
    elif vendor == "sqlite":
        schema_editor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
