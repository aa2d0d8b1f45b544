"""Beat entries whose interval an admin sets (django-celery-beat's DatabaseScheduler reads them)."""

from django.utils import timezone


def beat_interval_apply(*, name: str, task: str, every: int, period: str, description: str, apps=None) -> None:
    """Point beat's entry `name` at `task` every `every` `period` ("seconds", "minutes"...), creating it when
    missing; nothing is written when it already matches. `apps` is a migration's app registry."""
    if apps is None:
        from django.apps import apps
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule, _ = interval_model.objects.get_or_create(every=every, period=period)
    entry = task_model.objects.filter(name=name).first()
    if entry is None:
        task_model.objects.create(name=name, task=task, interval=schedule, enabled=True, description=description)
    elif entry.interval_id != schedule.id or entry.task != task:
        entry.interval, entry.task = schedule, task
        entry.save(update_fields=["interval", "task"])
    else:
        return
    # The DatabaseScheduler notices changes through this stamp (PeriodicTask.save() sets it; historical models
    # in a migration do not).
    changed_model = apps.get_model("django_celery_beat", "PeriodicTasks")
    changed_model.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})
