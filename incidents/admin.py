from django.contrib import admin

from incidents.models import (
    AssignmentRule,
    CannedResponse,
    Category,
    Incident,
    IncidentSettings,
    ResolutionCode,
    SavedView,
)
from servicedesk.admin import AuditedAdmin


@admin.register(Category)
class CategoryAdmin(AuditedAdmin):
    list_display = ["__str__", "parent"]
    search_fields = ["name"]
    list_select_related = ["parent"]


@admin.register(ResolutionCode)
class ResolutionCodeAdmin(AuditedAdmin):
    list_display = ["code", "label", "active", "order"]
    list_editable = ["label", "active", "order"]


@admin.register(AssignmentRule)
class AssignmentRuleAdmin(AuditedAdmin):
    list_display = ["name", "order", "active", "category", "service", "configuration_item", "keywords", "team"]
    list_editable = ["order", "active"]
    list_select_related = ["category", "service", "configuration_item", "team"]
    autocomplete_fields = ["service", "configuration_item", "team"]


@admin.register(CannedResponse)
class CannedResponseAdmin(AuditedAdmin):
    list_display = ["title", "team", "active"]
    list_filter = ["active", "team"]
    search_fields = ["title", "body"]


@admin.register(IncidentSettings)
class IncidentSettingsAdmin(AuditedAdmin):
    list_display = ["__str__", "auto_close_days"]

    def has_add_permission(self, request):
        return not IncidentSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SavedView)
class SavedViewAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "query"]
    list_select_related = ["owner"]


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
