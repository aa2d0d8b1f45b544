from django.apps import AppConfig


class EmailChannelConfig(AppConfig):
    name = "email_channel"
    label = "email_channel"
    verbose_name = "Email channel"

    def ready(self):
        from email_channel import plugin

        plugin.register()
