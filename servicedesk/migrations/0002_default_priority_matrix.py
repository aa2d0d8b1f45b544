from django.db import migrations

DEFAULT = {(1, 1): 1, (1, 2): 2, (2, 1): 2, (1, 3): 3, (2, 2): 3, (3, 1): 3, (2, 3): 4, (3, 2): 4, (3, 3): 5}


def forward(apps, schema_editor):
    rule = apps.get_model("servicedesk", "PriorityRule")
    existing = set(rule.objects.values_list("impact", "urgency"))
    rule.objects.bulk_create(
        [rule(impact=i, urgency=u, priority=p) for (i, u), p in DEFAULT.items() if (i, u) not in existing]
    )


class Migration(migrations.Migration):
    dependencies = [("servicedesk", "0001_initial")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
