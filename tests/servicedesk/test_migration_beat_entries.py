"""Migration 0016 removes the beat rows that retention-run replaced and nothing else."""

import importlib

import pytest
from django.apps import apps
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

migration = importlib.import_module("servicedesk.migrations.0016_drop_old_purge_beat_entries")


@pytest.mark.django_db
def test_the_old_purge_entries_are_deleted_and_the_others_kept():
    every = IntervalSchedule.objects.create(every=3600, period=IntervalSchedule.SECONDS)
    for name, task in (("outbox-purge", "servicedesk.tasks.outbox_purge"),
                       ("idempotency-keys-purge", "servicedesk.tasks.idempotency_keys_purge"),
                       ("retention-run", "servicedesk.tasks.retention_run"),
                       ("outbox-purge-mine", "myapp.tasks.purge")):
        PeriodicTask.objects.update_or_create(name=name, defaults={"task": task, "interval": every})
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    PeriodicTasks.objects.filter(ident=1).delete()

    migration.drop_old_entries(apps, None)

    left = set(PeriodicTask.objects.values_list("name", flat=True))
    assert left == names - {"outbox-purge", "idempotency-keys-purge"}
    assert {"outbox-purge-mine", "retention-run"} <= left
    assert PeriodicTasks.objects.filter(ident=1).exists()  # a running beat reloads its schedule
    assert ("django_celery_beat", "0001_initial") in migration.Migration.dependencies
    migration.drop_old_entries(apps, None)  # again: nothing left to do, no error
    assert set(PeriodicTask.objects.values_list("name", flat=True)) == left
