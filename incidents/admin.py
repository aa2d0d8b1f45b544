from django.contrib import admin

from incidents.models import Category, Incident
from servicedesk.admin import AuditedAdmin


@admin.register(Category)
class CategoryAdmin(AuditedAdmin):
    list_display = ["__str__", "parent"]
    search_fields = ["name"]


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    """Read-only here: incidents change through the workspace and the API, which go through services."""

    list_display = ["number", "title", "status", "priority", "assignment_group", "assignee", "created_at"]
    list_filter = ["status", "priority", "major"]
    search_fields = ["number", "title"]
    list_select_related = ["assignment_group", "assignee"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
