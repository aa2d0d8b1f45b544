"""Beat's entry for polling mailboxes: every 30 s, email_channel.tasks.mailboxes_poll queues the mailboxes that
are due (each mailbox's own interval is Mailbox.poll_seconds)."""

from django.db import migrations

from servicedesk.schedules import beat_interval_apply


def schedule(apps, schema_editor):
    beat_interval_apply(name="email-mailboxes-poll", task="email_channel.tasks.mailboxes_poll", every=30,
                        period="seconds", description="Poll the email channel's mailboxes that are due.",
                        apps=apps)


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name="email-mailboxes-poll").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("email_channel", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
