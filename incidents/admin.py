from django.contrib import admin
from django.db.models import Count

from incidents.models import (
    AssignmentRule,
    CannedResponse,
    Category,
    Incident,
    IncidentSettings,
    ResolutionCode,
    SavedView,
)
from servicedesk.admin import AuditedAdmin, TicketAdmin


@admin.register(Category)
class CategoryAdmin(AuditedAdmin):
    list_display = ["__str__", "parent"]
    search_fields = ["name"]
    list_select_related = ["parent"]


@admin.register(ResolutionCode)
class ResolutionCodeAdmin(AuditedAdmin):
    """Incidents store the code itself (not a foreign key), so admin protects it by hand: the code is fixed
    once created, and a code incidents were resolved with cannot be deleted (deactivate it instead)."""

    list_display = ["code", "label", "active", "order"]
    list_editable = ["label", "active", "order"]

    def get_readonly_fields(self, request, obj=None):
        return ["code"] if obj is not None else []

    def get_deleted_objects(self, objs, request):
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        labels = {code.code: code.label for code in objs}
        used = (Incident.objects.filter(resolution_code__in=labels).values("resolution_code")
                .annotate(n=Count("id")).order_by("resolution_code"))
        protected = list(protected) + [
            f"{row['n']} incident{'s' if row['n'] != 1 else ''} resolved as “{labels[row['resolution_code']]}”"
            " (deactivate the code instead)"
            for row in used
        ]
        return to_delete, model_count, perms_needed, protected


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
class SavedViewAdmin(AuditedAdmin):
    list_display = ["name", "owner", "query"]
    list_select_related = ["owner"]


@admin.register(Incident)
class IncidentAdmin(TicketAdmin):
    """Read-only and never deleted here: incidents change through the workspace and the API, which go
    through services (cancel or close); erasure is `manage.py erase_ticket`."""

    list_display = ["number", "title", "status", "priority", "assignment_group", "assignee", "created_at"]
    list_filter = ["status", "priority", "major"]
    search_fields = ["number", "title"]
    list_select_related = ["assignment_group", "assignee"]
    show_full_result_count = False
