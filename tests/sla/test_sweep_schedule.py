"""Beat runs the sweep: migrations leave a "sla-sweep" entry for django-celery-beat's DatabaseScheduler at the
interval of SLA settings, and saving SLA settings in admin re-times it (and tells the running beat)."""

from django.urls import reverse
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from servicedesk.models import AuditLog
from sla.models import SlaSettings


def sweep_entry() -> PeriodicTask:
    return PeriodicTask.objects.select_related("interval").get(name="sla-sweep")


def test_migrations_leave_a_beat_entry_at_the_settings_interval(db):
    entry = sweep_entry()
    assert entry.task == "sla.tasks.sla_sweep" and entry.enabled
    assert (entry.interval.every, entry.interval.period) == (SlaSettings.current().sweep_interval_seconds,
                                                             "seconds")
    assert entry.interval.every == 60


def test_saving_sla_settings_in_admin_re_times_the_sweep(admin_client):
    url = reverse("admin:sla_slasettings_change", args=[SlaSettings.current().pk])
    stamp = PeriodicTasks.last_change()

    response = admin_client.post(url, {"sweep_interval_seconds": "15", "_save": "Save"})

    assert response.status_code == 302, response.content.decode()[:2000]
    assert SlaSettings.current().sweep_interval_seconds == 15
    entry = sweep_entry()
    assert (entry.interval.every, entry.interval.period) == (15, "seconds")
    assert PeriodicTasks.last_change() is not None and PeriodicTasks.last_change() != stamp  # beat reloads
    assert PeriodicTask.objects.filter(task="sla.tasks.sla_sweep").count() == 1
    assert AuditLog.objects.filter(action__startswith="slasettings").exists()


def test_an_interval_out_of_range_is_refused_and_the_schedule_kept(admin_client):
    url = reverse("admin:sla_slasettings_change", args=[SlaSettings.current().pk])
    response = admin_client.post(url, {"sweep_interval_seconds": "2", "_save": "Save"})
    assert response.status_code == 200
    assert "greater than or equal to 5" in response.content.decode()
    assert sweep_entry().interval.every == 60
