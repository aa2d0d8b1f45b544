"""A fresh install has a Mon-Fri 09:00-17:00 calendar in TIME_ZONE, a 24x7 calendar and incident policies
covering every priority (sla.defaults documents them). Keyed by name: what an admin changed later stays."""

from django.db import migrations


def create_defaults(apps, schema_editor):
    from sla.defaults import ensure_defaults

    ensure_defaults(apps)


class Migration(migrations.Migration):
    dependencies = [("sla", "0001_configuration")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
