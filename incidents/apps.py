from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incident management"

    def ready(self):
        from incidents import plugin
        from incidents.models import Category
        from servicedesk.refcache import keep_rows

        plugin.register()
        # A subcategory shows its parent's name: renaming the parent drops its children's kept rows too.
        keep_rows(Category, related=("parent",),
                  embedded_in=lambda category: list(category.children.values_list("pk", flat=True)))
