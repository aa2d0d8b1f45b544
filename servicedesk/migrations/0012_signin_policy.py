from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("servicedesk", "0011_watcher"),
    ]

    operations = [
        migrations.CreateModel(
            name="SignInPolicy",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("require_agents", models.BooleanField(
                    default=False,
                    help_text="Agents must set up two-factor sign-in and enter a code at every sign-in.")),
                ("require_managers", models.BooleanField(
                    default=False, help_text="Managers (team leads) must set up two-factor sign-in.")),
                ("require_admins", models.BooleanField(
                    default=False, help_text="Admins must set up two-factor sign-in.")),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"verbose_name": "sign-in policy", "verbose_name_plural": "sign-in policy"},
        ),
    ]
