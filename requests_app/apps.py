from django.apps import AppConfig


class RequestsAppConfig(AppConfig):
    name = "requests_app"
    verbose_name = "Service requests"

    def ready(self):
        from requests_app import plugin

        plugin.register()
