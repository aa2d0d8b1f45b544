"""Admin of problem detection: its settings (one row; saving re-times the detector's beat entry) and the
candidates it proposed (read-only: managers decide in the workspace, /agent/problems/candidates/).
Imported by problems/admin.py."""

from django.contrib import admin

from problems.candidates import detection_schedule_apply
from problems.models import DetectionSettings, ProblemCandidate
from servicedesk.admin import AuditedAdmin, ReadOnlyAdmin


@admin.register(DetectionSettings)
class DetectionSettingsAdmin(AuditedAdmin):
    fields = ["window_days", "min_incidents", "similarity", "interval_minutes"]

    def has_add_permission(self, request):
        return not DetectionSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        detection_schedule_apply(obj.interval_minutes)


@admin.register(ProblemCandidate)
class ProblemCandidateAdmin(ReadOnlyAdmin):
    list_display = ["title", "key", "state", "size_when_dismissed", "problem", "decided_by", "updated_at"]
    list_filter = ["state"]
    search_fields = ["title", "key"]
    list_select_related = ["problem", "decided_by"]
