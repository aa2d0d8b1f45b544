from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "insights"
    verbose_name = "Continual improvement"

    def ready(self):
        from insights import plugin

        plugin.register()
