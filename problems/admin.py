"""Problems in admin: read-only and never deleted (TicketAdmin); they change through the workspace and the
API, which go through problems.services; erasure is `manage.py erase_ticket`."""

from django.contrib import admin

from problems.models import Problem, ProblemIncident
from servicedesk.admin import TicketAdmin


class ProblemIncidentInline(admin.TabularInline):
    """The incidents the problem explains, who linked each and when (read-only)."""

    model = ProblemIncident
    extra = 0
    fields = ["incident", "linked_by", "linked_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Problem)
class ProblemAdmin(TicketAdmin):
    list_display = ["number", "title", "status", "priority", "assignment_group", "assignee", "created_at"]
    list_filter = ["status", "priority", "assignment_group"]
    search_fields = ["number", "title"]
    list_select_related = ["assignment_group", "assignee"]
    show_full_result_count = False
    exclude = ["search_vector"]
    inlines = [ProblemIncidentInline]


from problems import admin_detection  # noqa: E402,F401 - problem detection settings and candidates
