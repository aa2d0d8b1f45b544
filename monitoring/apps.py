from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring and event management"

    def ready(self):
        from monitoring import plugin

        plugin.register()
