"""InboundMessage.message_id is cut to 250 characters (processing.MESSAGE_ID_MAX): a Message-ID of ~998
non-ASCII characters was larger than a btree index row may be, and PostgreSQL refused the whole mail. Rows
stored before are cut the same way first, so the dedupe keeps matching them."""

from django.db import migrations, models
from django.db.models.functions import Length, Substr


def cut_long_ids(apps, schema_editor):
    """Portable (PostgreSQL and the local run's SQLite): the ORM's Length and Substr, not one dialect's SQL."""
    message = apps.get_model("email_channel", "InboundMessage")
    message.objects.annotate(length=Length("message_id")).filter(length__gt=250).update(
        message_id=Substr("message_id", 1, 250))


class Migration(migrations.Migration):

    dependencies = [
        ('email_channel', '0002_poll_schedule'),
    ]

    operations = [
        migrations.RunPython(cut_long_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='inboundmessage',
            name='message_id',
            field=models.CharField(blank=True, db_index=True, max_length=250),
        ),
    ]
