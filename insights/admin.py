"""Insights in admin. The improvement register is read-only here: it changes through its pages
(/agent/insights/improvements/), which go through insights.improvements (version check, audit). Subscriptions
may be paused or deleted (a person's weekly e-mail, nothing else depends on it)."""

from django.contrib import admin, messages

from insights.models import Improvement, ImprovementTicket, Subscription
from insights.subscriptions import subscription_pause


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ImprovementTicketInline(ReadOnlyMixin, admin.TabularInline):
    model = ImprovementTicket
    extra = 0
    fields = ["kind", "number", "title"]
    readonly_fields = fields
    can_delete = False


@admin.register(Improvement)
class ImprovementAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["title", "status", "owner", "team", "service", "measure", "due_on", "before_value",
                    "after_value"]
    list_filter = ["status", "measure", "team"]
    search_fields = ["title", "why"]
    list_select_related = ["owner", "team", "service"]
    inlines = [ImprovementTicketInline]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "service", "weekday", "hour", "active", "next_due_at", "last_sent_at"]
    list_filter = ["active", "weekday", "team"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user", "team", "service"]
    readonly_fields = ["user", "team", "service", "weekday", "hour", "active", "next_due_at", "last_sent_at",
                       "created_at"]
    actions = ["pause"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Pause the selected weekly e-mails")
    def pause(self, request, queryset):
        """Switch each selected row off (subscription_pause): whoever its person is now, staff or not."""
        count = sum(subscription_pause(subscription_id=pk) for pk in queryset.values_list("id", flat=True))
        messages.success(request, f"Paused {count} weekly e-mail{'s' if count != 1 else ''}.")
