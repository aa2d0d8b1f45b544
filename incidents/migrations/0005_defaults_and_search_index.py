from django.db import migrations

CODES = [
    ("fixed", "Fixed"),
    ("workaround", "Workaround applied"),
    ("duplicate", "Duplicate"),
    ("not_reproducible", "Not reproducible"),
    ("user_error", "User error / advice given"),
]


def defaults(apps, schema_editor):
    code = apps.get_model("incidents", "ResolutionCode")
    for order, (slug, label) in enumerate(CODES):
        code.objects.get_or_create(code=slug, defaults={"label": label, "order": order})
    apps.get_model("incidents", "IncidentSettings").objects.get_or_create(pk=1)


def search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS incident_search_gin ON incidents_incident USING gin (search_vector)"
        )


def drop_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS incident_search_gin")


class Migration(migrations.Migration):
    dependencies = [("incidents", "0004_lifecycle_and_workspace")]
    operations = [
        migrations.RunPython(defaults, migrations.RunPython.noop),
        migrations.RunPython(search_index, drop_search_index),
    ]
