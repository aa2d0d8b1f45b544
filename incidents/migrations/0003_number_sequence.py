from django.db import migrations

from servicedesk.numbering import number_sequence_migration

forward, backward = number_sequence_migration("INC")


class Migration(migrations.Migration):
    dependencies = [("incidents", "0002_initial"), ("servicedesk", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
