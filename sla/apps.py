from django.apps import AppConfig


class SlaConfig(AppConfig):
    name = "sla"
    verbose_name = "Service level management"

    def ready(self):
        from sla import plugin, signals

        plugin.register()
        signals.connect()
