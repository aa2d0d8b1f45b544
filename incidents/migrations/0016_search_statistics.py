"""The planner's word statistics for incident search (PostgreSQL only; the local SQLite run has no tsvector).

With the default statistics target ANALYZE keeps the ~1,000 commonest words of `search_vector`; any other
word is guessed at 0.5% of the rows: 5,000 at a million incidents. For a rare word (a workstation name, 60
incidents) the planner then read the newest-first index hoping to meet 25 matches soon and scanned half the
table (4 s). A target of 1,000 keeps ten times as many words and guesses the others at a few rows, so a rare
word goes through the GIN index and a common one through the ordered index with the words as a filter.
"""

from django.db import migrations


def raise_target(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE incidents_incident ALTER COLUMN search_vector SET STATISTICS 1000")


def reset_target(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE incidents_incident ALTER COLUMN search_vector SET STATISTICS -1")


class Migration(migrations.Migration):
    dependencies = [("incidents", "0015_cancelled_closed_at")]
    operations = [migrations.RunPython(raise_target, reset_target)]
