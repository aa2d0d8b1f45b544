"""Problem detection: a trigram GIN index on incidents' titles, so the detector's `title % title` self-join
(problems.detection) probes an index instead of comparing every pair, and the beat entry that runs the
detector every DetectionSettings.interval_minutes. pg_trgm is created by requests_app.0006_portal (IF NOT
EXISTS here too). SQLite (the local run) gets only the beat entry."""

from django.db import migrations

INDEX = "incident_title_trgm"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON incidents_incident USING gin (title gin_trgm_ops)")


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


def settings_and_schedule(apps, schema_editor):
    from problems.candidates import detection_schedule_apply

    settings = apps.get_model("problems", "DetectionSettings").objects.get_or_create(pk=1)[0]
    detection_schedule_apply(settings.interval_minutes, apps=apps)


class Migration(migrations.Migration):
    dependencies = [
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("requests_app", "0006_portal"),
        ("problems", "0002_search"),
    ]
    operations = [
        migrations.RunPython(create_index, drop_index),
        migrations.RunPython(settings_and_schedule, migrations.RunPython.noop),
    ]
