from django.apps import AppConfig


class ServicedeskConfig(AppConfig):
    name = "servicedesk"
    verbose_name = "Service desk (shared kernel)"

    def ready(self):
        from django.db.models.signals import post_migrate

        # checks registers itself; twofactor connects its user_logged_in receiver
        from servicedesk import checks, roles, tokens, twofactor  # noqa: F401

        post_migrate.connect(roles.post_migrate_ensure_roles, sender=self)
        tokens.connect_signals()
        roles.connect_staff_choices_signals()
        from servicedesk.models import Service, Team
        from servicedesk.refcache import keep_rows

        keep_rows(Team)  # ticket pages show their team and service from the kept rows (servicedesk.refcache)
        keep_rows(Service)
        from servicedesk.metrics import instrument_connections

        instrument_connections()
