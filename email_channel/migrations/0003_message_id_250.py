"""InboundMessage.message_id is cut to 250 characters (processing.MESSAGE_ID_MAX): a Message-ID of ~998
non-ASCII characters was larger than a btree index row may be, and PostgreSQL refused the whole mail. Rows
stored before are cut the same way first, so the dedupe keeps matching them."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('email_channel', '0002_poll_schedule'),
    ]

    operations = [
        migrations.RunSQL(
            "UPDATE email_channel_inboundmessage SET message_id = left(message_id, 250) "
            "WHERE char_length(message_id) > 250",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name='inboundmessage',
            name='message_id',
            field=models.CharField(blank=True, db_index=True, max_length=250),
        ),
    ]
