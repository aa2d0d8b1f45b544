from django.apps import AppConfig


class ServicedeskConfig(AppConfig):
    name = "servicedesk"
    verbose_name = "Service desk (shared kernel)"

    def ready(self):
        from django.db.models.signals import post_migrate

        from servicedesk import checks, roles, tokens  # noqa: F401  (checks registers itself)

        post_migrate.connect(roles.post_migrate_ensure_roles, sender=self)
        tokens.connect_signals()
        from servicedesk.metrics import instrument_connections

        instrument_connections()
