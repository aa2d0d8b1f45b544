from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring and event management"

    def ready(self):
        from monitoring import plugin, processing  # noqa: F401 - processing connects its kept configuration's drops

        plugin.register()
