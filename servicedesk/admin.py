from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from servicedesk import models
from servicedesk.services import audit_record


class AuditedAdmin(admin.ModelAdmin):
    """Configuration changes made in admin land in the audit trail with the changed fields."""

    def save_model(self, request, obj, form, change):
        before = {name: form.initial.get(name) for name in form.changed_data} if change else {}
        super().save_model(request, obj, form, change)
        after = {name: form.cleaned_data.get(name) for name in form.changed_data}
        audit_record(
            actor=request.user,
            action=f"{obj._meta.model_name}.{'changed' if change else 'added'}",
            obj=obj,
            changes={"before": _plain(before), "after": _plain(after)},
        )

    def delete_model(self, request, obj):
        audit_record(actor=request.user, action=f"{obj._meta.model_name}.deleted", obj=obj)
        super().delete_model(request, obj)


def _plain(values: dict) -> dict:
    return {k: v if isinstance(v, str | int | float | bool | type(None)) else str(v) for k, v in values.items()}


class ProfileInline(admin.StackedInline):
    model = models.Profile
    can_delete = False
    fk_name = "user"


class MembershipInline(admin.TabularInline):
    model = models.TeamMembership
    extra = 1
    autocomplete_fields = ["user"]


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = [ProfileInline]
    list_display = ["username", "email", "first_name", "last_name", "is_staff", "is_active"]
    list_filter = ["groups", "is_staff", "is_active"]


@admin.register(models.Organisation)
class OrganisationAdmin(AuditedAdmin):
    list_display = ["name", "email_domain", "created_at"]
    search_fields = ["name", "email_domain"]


@admin.register(models.Team)
class TeamAdmin(AuditedAdmin):
    list_display = ["name", "lead", "assignment_strategy", "email"]
    search_fields = ["name"]
    autocomplete_fields = ["lead"]
    inlines = [MembershipInline]


@admin.register(models.Service)
class ServiceAdmin(AuditedAdmin):
    list_display = ["name", "owner_team", "criticality", "default_impact", "active"]
    list_filter = ["criticality", "default_impact", "active", "owner_team"]
    search_fields = ["name"]


@admin.register(models.ConfigurationItem)
class ConfigurationItemAdmin(AuditedAdmin):
    list_display = ["name", "kind", "state", "owner_team", "criticality"]
    list_filter = ["kind", "state", "criticality"]
    search_fields = ["name"]
    filter_horizontal = ["services"]


@admin.register(models.PriorityRule)
class PriorityRuleAdmin(AuditedAdmin):
    list_display = ["impact", "urgency", "priority"]
    list_editable = ["priority"]
    list_display_links = None


@admin.register(models.Webhook)
class WebhookAdmin(AuditedAdmin):
    list_display = ["name", "url", "active", "created_at"]
    list_filter = ["active"]


@admin.register(models.WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["event", "webhook", "state", "attempts", "response_code", "created_at", "delivered_at"]
    list_filter = ["state", "webhook"]
    list_select_related = ["webhook"]
    readonly_fields = [f.name for f in models.WebhookDelivery._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(models.AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "action", "object_repr"]
    list_filter = ["action"]
    search_fields = ["object_repr", "action", "actor__username"]
    list_select_related = ["actor"]
    readonly_fields = ["at", "actor", "action", "content_type", "object_id", "object_repr", "changes"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(models.Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "seen_at", "detail"]

    def has_add_permission(self, request):
        return False
