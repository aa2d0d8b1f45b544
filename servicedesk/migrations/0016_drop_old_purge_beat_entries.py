"""Delete the beat entries that retention-run replaced (servicedesk/retention.py).

"outbox-purge" and "idempotency-keys-purge" were in CELERY_BEAT_SCHEDULE before retention. django_celery_beat's
database scheduler copied them into PeriodicTask rows and keeps running such rows after they leave the settings,
so they would still fire (twice the purging, or a task that no longer exists). Plain ORM: SQLite too. Nothing to
do where django_celery_beat is not installed."""

from django.conf import settings
from django.db import migrations
from django.utils import timezone

OLD_ENTRIES = ("outbox-purge", "idempotency-keys-purge")
BEAT_INSTALLED = "django_celery_beat" in settings.INSTALLED_APPS


def drop_old_entries(apps, schema_editor):
    if not BEAT_INSTALLED:
        return
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    deleted, _ = PeriodicTask.objects.filter(name__in=OLD_ENTRIES).delete()
    if deleted:
        # What a running beat watches to reload its schedule (django_celery_beat's signals do not fire here).
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


class Migration(migrations.Migration):

    dependencies = [
        ("servicedesk", "0015_retention"),
        *([("django_celery_beat", "0001_initial")] if BEAT_INSTALLED else []),
    ]

    operations = [migrations.RunPython(drop_old_entries, migrations.RunPython.noop)]
